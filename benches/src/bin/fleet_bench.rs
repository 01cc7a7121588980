//! Durable steps per second with many workers on one store: the worker processes of
//! `benches/fleet.py`.
//!
//! ```text
//! python3 benches/fleet.py                  # builds this in release, PostgreSQL and SQLite, 3 repeats
//! fleet_bench populate DB RUNS              # starts RUNS runs of `fleet10` (no engine runs them)
//! fleet_bench work DB CONCURRENCY           # one worker: runs them until none is unfinished
//! fleet_bench latency DB RUNS               # RUNS runs one after another: each step's latency
//! ```
//!
//! `DB` is an SQLite file's path or a PostgreSQL database's `postgres://` URL
//! ([`PgStore::connect`]). A run of [`fleet10`] goes through 10 steps that each add 1 to a
//! number: the steps do next to nothing, so what is measured is the durable part of a step —
//! the claim of the run under a lease, the checkpoint after every step (one transaction, one
//! commit flushed to disk), the release — and the engine around it.
//!
//! * `populate` starts `RUNS` runs with [`Engine::start`] (run ids `fleet-00000`, …), 64 at
//!   a time, and exits: the runs wait in the store for workers.
//! * `work` is one worker: an [`Engine`] named after its process (`fleet-<pid>`), with the
//!   default lease, at most `CONCURRENCY` runs at once and a poll interval of 10 ms. It runs
//!   until no run of [`fleet10`] is left `Running` in the store (looked at every 20 ms), so
//!   that several workers on one store all stop once the last run finished, wherever it ran.
//!   Prints what it finished and the CPU time it used.
//! * `latency` runs one engine over the store and starts `RUNS` runs one after another, each
//!   once the previous one finished, every step recording when it began: the gap from one
//!   step beginning to the next is a durable step (the step, its checkpoint, the driver
//!   between them), with the store's own clock in microseconds. Prints p50 and p90 of those
//!   gaps, and of the gaps between the checkpoints of the runs' histories
//!   ([`RunHistory::steps`], whose times are milliseconds).
//!
//! Output is one `key=value` per line, for the driver script to parse.

use flow_runtime::state::{Engine, EngineReport, RunResult, Setup};
use flow_runtime::store::{
    HistoryEntry, PgStore, RunControl, RunFilter, RunHistory, RunQueue, RunStatus, SqliteStore,
};
use std::error::Error;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// When each step began, when recording (the `latency` mode); nothing otherwise.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<Mutex<Vec<Instant>>>>);

impl Clock {
    fn recording() -> Self {
        Self(Some(Arc::default()))
    }

    fn tick(&self) {
        if let Some(starts) = &self.0 {
            starts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now());
        }
    }

    fn take(&self) -> Vec<Instant> {
        self.0.as_ref().map_or_else(Vec::new, |starts| {
            std::mem::take(&mut *starts.lock().unwrap_or_else(PoisonError::into_inner))
        })
    }
}

/// 10 steps, each adds 1 to the number (and notes when it began, when the clock records).
#[flow_runtime::workflow(deps = Clock)]
#[allow(clippy::unused_async, reason = "steps are `async fn`s")]
mod fleet10 {
    use super::Clock;
    use flow_runtime::prelude::*;
    use std::convert::Infallible;

    /// Step 1.
    #[step(entry)]
    pub(crate) async fn s1(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 2.
    #[step(after = s1)]
    pub(crate) async fn s2(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 3.
    #[step(after = s2)]
    pub(crate) async fn s3(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 4.
    #[step(after = s3)]
    pub(crate) async fn s4(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 5.
    #[step(after = s4)]
    pub(crate) async fn s5(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 6.
    #[step(after = s5)]
    pub(crate) async fn s6(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 7.
    #[step(after = s6)]
    pub(crate) async fn s7(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 8.
    #[step(after = s7)]
    pub(crate) async fn s8(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 9.
    #[step(after = s8)]
    pub(crate) async fn s9(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }

    /// Step 10.
    #[step(after = s9, exit)]
    pub(crate) async fn s10(ctx: &Ctx<Clock>, x: u64) -> Result<u64, Infallible> {
        ctx.deps().tick();
        Ok(x.wrapping_add(1))
    }
}

type Workflow = fleet10::Workflow;
const NAME: &str = <Workflow as flow_runtime::state::Workflow>::NAME;
/// Steps in a run of [`fleet10`].
const STEPS: usize = 10;
/// How often a worker looks for runs still unfinished.
const DONE_CHECK: Duration = Duration::from_millis(20);
/// The workers' poll interval: how soon a worker with free slots looks for due runs again.
const POLL: Duration = Duration::from_millis(10);
/// Runs started at once by `populate`.
const STARTING: usize = 64;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let number = |what: &str, s: &str| -> Result<usize, BoxError> {
        s.parse().map_err(|e| format!("{what} `{s}`: {e}").into())
    };
    let (mode, db) = match args.as_slice() {
        ["populate", db, runs] => (Mode::Populate(number("RUNS", runs)?), *db),
        ["work", db, concurrency] => (Mode::Work(number("CONCURRENCY", concurrency)?), *db),
        ["latency", db, runs] => (Mode::Latency(number("RUNS", runs)?), *db),
        _ => return Err(usage()),
    };
    // As a worker deploys it: `#[tokio::main]`'s runtime, a thread per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if db.starts_with("postgres://") {
            mode.run(Arc::new(PgStore::connect(db).await?)).await
        } else {
            mode.run(Arc::new(SqliteStore::open(Path::new(db))?)).await
        }
    })
}

fn usage() -> BoxError {
    "usage: fleet_bench populate DB RUNS | fleet_bench work DB CONCURRENCY | \
     fleet_bench latency DB RUNS (DB: an SQLite path or a postgres:// URL)"
        .into()
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Populate(usize),
    Work(usize),
    Latency(usize),
}

impl Mode {
    async fn run<S>(self, store: Arc<S>) -> Result<(), BoxError>
    where
        S: RunQueue + RunHistory + 'static,
    {
        match self {
            Self::Populate(runs) => populate(store, runs).await,
            Self::Work(concurrency) => work(store, concurrency).await,
            Self::Latency(runs) => latency(store, runs).await,
        }
    }
}

/// Starts `runs` runs of [`fleet10`], [`STARTING`] at a time; no engine runs them.
async fn populate<S: RunQueue + 'static>(store: Arc<S>, runs: usize) -> Result<(), BoxError> {
    let engine = Engine::builder(store)
        .register::<Workflow>(Setup::new(Clock::default()))
        .build();
    let began = Instant::now();
    let mut starts = JoinSet::new();
    for n in 0..runs {
        if starts.len() == STARTING
            && let Some(started) = starts.join_next().await
        {
            started??;
        }
        let engine = engine.clone();
        starts.spawn(async move { engine.start::<Workflow>(format!("fleet-{n:05}"), 0).await });
    }
    while let Some(started) = starts.join_next().await {
        started??;
    }
    println!("phase=populate");
    println!("runs={runs}");
    println!("seconds={:.3}", began.elapsed().as_secs_f64());
    Ok(())
}

/// One worker: runs due runs of [`fleet10`] until none is left unfinished in the store.
async fn work<S: RunQueue + 'static>(store: Arc<S>, concurrency: usize) -> Result<(), BoxError> {
    let engine = Engine::builder(Arc::clone(&store))
        .register::<Workflow>(Setup::new(Clock::default()))
        .worker(format!("fleet-{}", std::process::id()))
        .concurrency(concurrency)
        .poll_interval(POLL)
        .build();
    let began = Instant::now();
    let report = engine.run_until(all_finished(&*store)).await?;
    let seconds = began.elapsed().as_secs_f64();
    let cpu = cpu_seconds()?;
    println!("phase=work");
    print_report(&report);
    println!("seconds={seconds:.3}");
    println!("cpu_seconds={cpu:.3}");
    Ok(())
}

/// Resolves once the store holds no `Running` run of [`fleet10`]. A store that fails to
/// answer is asked again.
async fn all_finished<S: RunControl>(store: &S) {
    let unfinished = RunFilter::new()
        .workflow(NAME)
        .status(RunStatus::Running)
        .limit(1);
    loop {
        tokio::time::sleep(DONE_CHECK).await;
        match store.list(&unfinished).await {
            Ok(runs) if runs.is_empty() => return,
            Ok(_) => {}
            Err(error) => eprintln!("fleet_bench: cannot list the unfinished runs: {error}"),
        }
    }
}

/// `runs` runs of [`fleet10`] one after another on one engine, every step's beginning timed.
async fn latency<S>(store: Arc<S>, runs: usize) -> Result<(), BoxError>
where
    S: RunQueue + RunHistory + 'static,
{
    let clock = Clock::recording();
    let engine = Engine::builder(Arc::clone(&store))
        .register::<Workflow>(Setup::new(clock.clone()))
        .worker(format!("fleet-{}", std::process::id()))
        .concurrency(1)
        .poll_interval(POLL)
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
        }
    });
    let mut gaps = Vec::with_capacity(runs * (STEPS - 1));
    let mut history_gaps = Vec::with_capacity(runs * STEPS);
    for n in 0..runs {
        let run_id = engine
            .start::<Workflow>(format!("latency-{n:05}"), 0)
            .await?;
        match engine
            .wait_for::<Workflow>(&run_id, Duration::from_mins(1))
            .await?
        {
            RunResult::Finished(_) => {}
            other => return Err(format!("run `{run_id}` did not finish: {other:?}").into()),
        }
        let starts = clock.take();
        if starts.len() != STEPS {
            return Err(
                format!("run `{run_id}`: {} steps began, not {STEPS}", starts.len()).into(),
            );
        }
        gaps.extend(starts.windows(2).map(|w| w[1].duration_since(w[0])));
        history_gaps.extend(checkpoint_gaps(&store.steps(&run_id).await?));
    }
    let _ = stop.send(());
    let report = worker.await??;
    println!("phase=latency");
    print_report(&report);
    gaps.sort_unstable();
    history_gaps.sort_unstable();
    println!("gaps={}", gaps.len());
    println!("p50_us={}", quantile(&gaps, 500).as_micros());
    println!("p90_us={}", quantile(&gaps, 900).as_micros());
    println!("history_gaps={}", history_gaps.len());
    println!(
        "history_p50_ms={}",
        quantile(&history_gaps, 500).as_millis()
    );
    println!(
        "history_p90_ms={}",
        quantile(&history_gaps, 900).as_millis()
    );
    Ok(())
}

/// The time from each checkpoint of a run's history to the next: a step and its checkpoint.
fn checkpoint_gaps(history: &[HistoryEntry]) -> impl Iterator<Item = Duration> + '_ {
    history
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at).unwrap_or(Duration::ZERO))
}

/// The `per_mille`th quantile of `sorted` (nearest rank below), zero when it is empty.
fn quantile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * per_mille / 1000).min(sorted.len() - 1)]
}

fn print_report(report: &EngineReport) {
    println!("finished={}", report.finished);
    println!("parked={}", report.parked);
    println!("failed={}", report.failed);
    println!("stopped={}", report.stopped);
    println!("lost={}", report.lost);
    println!("interrupted={}", report.interrupted);
}

/// The CPU time this process has used, user and system, every thread, from
/// `/proc/self/stat` (in clock ticks of 1/100 s, the `USER_HZ` of Linux on x86-64 and arm64).
fn cpu_seconds() -> Result<f64, BoxError> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // After the command's name, which is in parentheses and may hold spaces: fields 3 on.
    let rest = stat.rsplit_once(')').ok_or("no `)` in /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |i: usize| -> Result<f64, BoxError> {
        Ok(fields
            .get(i)
            .ok_or("/proc/self/stat is too short")?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / USER_HZ)
}
