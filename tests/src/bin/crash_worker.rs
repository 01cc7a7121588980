//! The process `tests/processes/crash.rs` kills with `SIGKILL` and starts again.
//!
//! ```text
//! crash_worker DB EFFECTS RUNS CONCURRENCY
//! ```
//!
//! Drives runs `run-0` … `run-{RUNS-1}` of the 10-step workflow [`crashy`] against the
//! `SqliteStore` in `DB`, `CONCURRENCY` runs at a time, each with `Workflow::run_or_resume`: a
//! finished run returns its output, a run with a checkpoint is resumed from it, any other run starts
//! with input `i`. Every step first appends `run-i sK` to the file `EFFECTS` (its side effect,
//! outside the store, so the test can see which steps ran, including those whose checkpoint
//! never made it), then sleeps 1–3 ms so that kills land in the middle of runs.
//!
//! Exits 0 once every run has finished, 1 (with a message) on any error.

use flow_runtime::prelude::*;
use flow_runtime::store::SqliteStore;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where steps record that they ran.
#[derive(Clone, Debug)]
pub struct Effects(Arc<File>);

impl Effects {
    /// Appends `run-i sK` and sleeps 1–3 ms. One `write` call on an `O_APPEND` file: the line
    /// is in the file (the kernel's, which a `SIGKILL` does not lose) before the step returns.
    async fn record(&self, ctx: &Ctx<Effects>, k: u64) -> Result<(), std::io::Error> {
        let line = format!("{} s{k}\n", ctx.run_id());
        (&*self.0).write_all(line.as_bytes())?;
        (&*self.0).flush()?;
        let jitter = line.bytes().map(u64::from).sum::<u64>() % 3;
        tokio::time::sleep(Duration::from_millis(1 + jitter)).await;
        Ok(())
    }
}

/// What step `k` does to the value: the test computes the same.
fn mix(x: u64, k: u64) -> u64 {
    x.wrapping_mul(31).wrapping_add(k)
}

/// 10 steps in a line; each records its effect and mixes the value.
#[workflow(deps = Effects)]
pub mod crashy {
    use super::*;

    #[step(entry)]
    pub async fn s1(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 1).await?;
        Ok(mix(x, 1))
    }

    #[step(after = s1)]
    pub async fn s2(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 2).await?;
        Ok(mix(x, 2))
    }

    #[step(after = s2)]
    pub async fn s3(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 3).await?;
        Ok(mix(x, 3))
    }

    #[step(after = s3)]
    pub async fn s4(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 4).await?;
        Ok(mix(x, 4))
    }

    #[step(after = s4)]
    pub async fn s5(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 5).await?;
        Ok(mix(x, 5))
    }

    #[step(after = s5)]
    pub async fn s6(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 6).await?;
        Ok(mix(x, 6))
    }

    #[step(after = s6)]
    pub async fn s7(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 7).await?;
        Ok(mix(x, 7))
    }

    #[step(after = s7)]
    pub async fn s8(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 8).await?;
        Ok(mix(x, 8))
    }

    #[step(after = s8)]
    pub async fn s9(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 9).await?;
        Ok(mix(x, 9))
    }

    #[step(after = s9, exit)]
    pub async fn s10(ctx: &Ctx<Effects>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, 10).await?;
        Ok(mix(x, 10))
    }
}

/// Drives run `run-{i}` to its end, from wherever the store says it is.
async fn drive(store: &Arc<SqliteStore>, effects: &Effects, i: u64) -> Result<(), String> {
    let run_id = RunId::from(format!("run-{i}"));
    let ctx = Ctx::builder(effects.clone())
        .run_id(run_id.clone())
        .store(Arc::clone(store))
        .build();
    // The run id is the idempotency key: a stored run continues from its latest checkpoint
    // (after `run_or_resume` checks that this code wrote it), a finished one returns its output.
    let output = crashy::Workflow::run_or_resume(&ctx, i)
        .await
        .map_err(|e| format!("{run_id}: {e}"))?;
    let expected = (1..=10).fold(i, mix);
    if output == expected {
        Ok(())
    } else {
        Err(format!("{run_id}: output {output}, expected {expected}"))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, effects, runs, concurrency] = args.as_slice() else {
        eprintln!("usage: crash_worker DB EFFECTS RUNS CONCURRENCY");
        return ExitCode::FAILURE;
    };
    let (Ok(runs), Ok(concurrency)) = (runs.parse::<u64>(), concurrency.parse::<usize>()) else {
        eprintln!("crash_worker: RUNS and CONCURRENCY must be numbers");
        return ExitCode::FAILURE;
    };
    match work(db, effects, runs, concurrency.max(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn work(db: &str, effects: &str, runs: u64, concurrency: usize) -> Result<(), String> {
    let store = Arc::new(SqliteStore::open(db).map_err(|e| e.to_string())?);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(effects)
        .map_err(|e| format!("{effects}: {e}"))?;
    let effects = Effects(Arc::new(file));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        // `concurrency` workers take the next run id from a shared counter.
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::<Result<(), String>>::new();
        for _ in 0..concurrency {
            let (store, effects, next) = (Arc::clone(&store), effects.clone(), Arc::clone(&next));
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= runs {
                        return Ok(());
                    }
                    drive(&store, &effects, i).await?;
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}
