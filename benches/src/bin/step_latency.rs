//! Tail latency of a durable step: one sequential workflow on a `SqliteStore` file, every step
//! timed.
//!
//! ```text
//! python3 benches/step_latency.py                  # builds this in release, 5 rounds of 5,000 steps
//! step_latency PATH STEPS                          # one round: a new store at PATH
//! ```
//!
//! A run of [`ticker`] goes round a loop of one step, `tick`, `STEPS` times; the driver stores
//! a checkpoint after every step (one transaction, one `fsync` of the write-ahead log), so the
//! time from one `tick` starting to the next one starting is one durable step: the step, its
//! checkpoint and the driver between them. The step records when it starts; the gaps are the
//! per-step latencies, reported as p50, p90, p99, p99.9 and the maximum, in microseconds.
//!
//! Output is one `key=value` per line, for the driver script to parse.

use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use std::error::Error;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// When each `tick` started.
#[derive(Debug, Default)]
pub struct Starts(Mutex<Vec<Instant>>);

impl Starts {
    fn record(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
    }
}

/// Goes round `tick` until the count is 0.
#[flow_runtime::workflow(deps = Starts)]
mod ticker {
    use super::Starts;
    use flow_runtime::prelude::*;
    use std::convert::Infallible;

    /// Whether to go round again.
    pub(crate) enum Next {
        /// Steps still to go.
        #[to(tick)]
        Again(u64),
        /// Done.
        Stop(u64),
    }

    /// Records its start and counts down by one.
    #[step(entry, routes = Next)]
    #[allow(clippy::unused_async, reason = "steps are `async fn`s")]
    pub(crate) async fn tick(ctx: &Ctx<Starts>, n: u64) -> Result<Next, Infallible> {
        ctx.deps().record();
        Ok(if n <= 1 {
            Next::Stop(0)
        } else {
            Next::Again(n - 1)
        })
    }

    /// The end of the loop.
    #[step(after = tick, exit)]
    #[allow(clippy::unused_async, reason = "steps are `async fn`s")]
    pub(crate) async fn stop(ctx: &Ctx<Starts>, n: u64) -> Result<u64, Infallible> {
        ctx.deps().record();
        Ok(n)
    }
}

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, steps] = args.as_slice() else {
        return Err("usage: step_latency PATH STEPS (PATH must not exist)".into());
    };
    let steps: u64 = steps.parse().map_err(|e| format!("STEPS `{steps}`: {e}"))?;
    if steps < 2 {
        return Err("STEPS: give at least 2 steps, so that there is a gap to time".into());
    }
    let path = Path::new(path);
    if path.exists() {
        return Err(format!("`{}` exists: each round makes a new store", path.display()).into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let began = Instant::now();
    let starts = runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(path)?);
        let ctx = Ctx::builder(Starts::default())
            .run_id("ticker")
            .store(store)
            .build();
        ticker::Workflow::run(&ctx, steps).await?;
        Ok::<_, BoxError>(std::mem::take(
            &mut *ctx.deps().0.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    })?;
    let elapsed = began.elapsed();
    let mut gaps: Vec<u128> = starts
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_micros())
        .collect();
    gaps.sort_unstable();
    let at = |q: usize| gaps[(gaps.len() * q / 1000).min(gaps.len() - 1)];
    println!("steps={}", gaps.len());
    println!("seconds={:.3}", elapsed.as_secs_f64());
    println!("p50_us={}", at(500));
    println!("p90_us={}", at(900));
    println!("p99_us={}", at(990));
    println!("p999_us={}", at(999));
    println!("max_us={}", gaps[gaps.len() - 1]);
    println!("mean_us={}", gaps.iter().sum::<u128>() / gaps.len() as u128);
    Ok(())
}
