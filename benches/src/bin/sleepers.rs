//! 100,000 sleeping runs: how much memory a worker needs to run the engine over them.
//!
//! ```text
//! python3 benches/sleeping_runs.py                 # builds this in release, N = 100,000, 5 s of work
//! python3 benches/sleeping_runs.py --runs 1000000 --seconds 10
//! ```
//!
//! A run of [`sleeper`] sleeps 30 days in its first step, then finishes. Once parked it is a
//! row in the store with a wake-up time, and the engine keeps no task or memory for it: a
//! worker's resident memory should not grow with the number of sleeping runs. Two phases, each
//! its own process, so that the worker's figures owe nothing to the populating:
//!
//! * `sleepers populate PATH N` makes a new SQLite store at `PATH` and starts `N` runs on an
//!   engine, in batches of 2,000 started at once so that SQLite's group commit writes them
//!   together, each batch run until every run of it is parked before the next starts. Prints
//!   how long that took.
//! * `sleepers work PATH SECONDS [multi-thread|current-thread]` opens the store, builds an
//!   engine with the same workflow and runs it for `SECONDS` (nothing is due, so it finishes
//!   nothing), then prints `VmRSS` and `VmHWM` (peak) from `/proc/self/status`, read before
//!   anything else, then counts the runs in the store. The runtime is tokio's multi-thread one
//!   (what `#[tokio::main]` gives) unless `current-thread` is given.
//!
//! Output is one `key=value` per line, for the driver script to parse.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::{RunControl, RunFilter, RunQueue, RunStatus, SqliteStore};
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// How long every run sleeps: far beyond any benchmark, so nothing becomes due.
const SLEEP: Duration = Duration::from_hours(30 * 24);
/// Runs started at once while populating. The engine's `due` query sorts the due runs, so the
/// next batch waits until this one is parked: the due set stays this small.
const BATCH: u64 = 2_000;
/// Runs in flight at once in the populating engine: enough for large group commits.
const CONCURRENCY: usize = 1_024;

/// Sleeps 30 days, then finishes.
#[flow_runtime::workflow]
mod sleeper {
    use super::SLEEP;
    use flow_runtime::prelude::*;
    use std::convert::Infallible;

    /// Parks the run for 30 days.
    #[step(entry)]
    #[allow(clippy::unused_async, reason = "steps are `async fn`s")]
    pub(crate) async fn doze(n: u64) -> Result<Sleep<u64>, Infallible> {
        Ok(Sleep::new(SLEEP, n))
    }

    /// Never reached in the benchmark.
    #[step(after = doze, exit)]
    #[allow(clippy::unused_async, reason = "steps are `async fn`s")]
    pub(crate) async fn wake(n: u64) -> Result<u64, Infallible> {
        Ok(n)
    }
}

const NAME: &str = <sleeper::Workflow as Workflow>::NAME;

type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["populate", path, runs] => {
            let runs: u64 = runs.parse().map_err(|e| format!("N `{runs}`: {e}"))?;
            runtime(true)?.block_on(populate(Path::new(path), runs))
        }
        ["work", path, seconds, flavour @ ..] => {
            let seconds: f64 = seconds
                .parse()
                .map_err(|e| format!("SECONDS `{seconds}`: {e}"))?;
            let multi = match flavour {
                [] | ["multi-thread"] => true,
                ["current-thread"] => false,
                _ => return Err(usage()),
            };
            runtime(multi)?.block_on(work(Path::new(path), seconds, multi))
        }
        _ => Err(usage()),
    }
}

fn usage() -> BoxError {
    "usage: sleepers populate PATH N | sleepers work PATH SECONDS [multi-thread|current-thread]"
        .into()
}

fn runtime(multi: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_time()
    .build()
}

/// Makes a new store at `path` with `runs` runs of [`sleeper`], every one parked.
async fn populate(path: &Path, runs: u64) -> Result<(), BoxError> {
    if path.exists() {
        return Err(format!("`{}` exists: populate makes a new store", path.display()).into());
    }
    let began = Instant::now();
    let store = Arc::new(SqliteStore::open(path)?);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<sleeper::Workflow>(Setup::new(()))
        .concurrency(CONCURRENCY)
        .build();
    let (stop, stopped) = oneshot::channel::<()>();
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

    let mut starting = Duration::ZERO;
    let mut next = 0;
    while next < runs {
        let end = (next + BATCH).min(runs);
        let batch_began = Instant::now();
        let mut starts = JoinSet::new();
        for n in next..end {
            let engine = engine.clone();
            starts.spawn(async move {
                engine
                    .start::<sleeper::Workflow>(format!("sleeper-{n:07}"), n)
                    .await
            });
        }
        while let Some(started) = starts.join_next().await {
            started??;
        }
        starting += batch_began.elapsed();
        until_parked(&store).await?;
        next = end;
    }
    let _ = stop.send(());
    let report = worker.await??;
    let elapsed = began.elapsed();

    let running = count_running(&store).await?;
    println!("phase=populate");
    println!("runs={runs}");
    println!("seconds={:.3}", elapsed.as_secs_f64());
    println!("starting_seconds={:.3}", starting.as_secs_f64());
    println!("parked={}", report.parked);
    println!("finished={}", report.finished);
    println!("failed={}", report.failed);
    println!("running={running}");
    if report.parked != runs || running != runs {
        return Err(format!(
            "{runs} runs started, {} parked, {running} running",
            report.parked
        )
        .into());
    }
    Ok(())
}

/// Resolves once the store has no due run of [`sleeper`]: every run started is parked.
async fn until_parked(store: &SqliteStore) -> Result<(), BoxError> {
    while !store.due(SystemTime::now(), &[NAME], 1).await?.is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Runs of [`sleeper`] that are `Running`: asleep, or due.
async fn count_running(store: &SqliteStore) -> Result<u64, BoxError> {
    let filter = RunFilter::new().workflow(NAME).status(RunStatus::Running);
    Ok(u64::try_from(store.list(&filter).await?.len())?)
}

/// Runs an engine over the store at `path` for `seconds`, then reports its memory.
async fn work(path: &Path, seconds: f64, multi: bool) -> Result<(), BoxError> {
    // `open` would make an empty store.
    if !path.exists() {
        return Err(format!("`{}` does not exist: run `populate` first", path.display()).into());
    }
    let store = Arc::new(SqliteStore::open(path)?);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<sleeper::Workflow>(Setup::new(()))
        .build();
    let report = engine
        .run_until(tokio::time::sleep(Duration::from_secs_f64(seconds)))
        .await?;
    // Before anything else: counting the runs lists them all, which costs memory of its own.
    let memory = proc_status(&[
        ("VmRSS", "vm_rss_kib"),
        ("VmHWM", "vm_hwm_kib"),
        ("RssAnon", "rss_anon_kib"),
        ("RssFile", "rss_file_kib"),
        ("RssShmem", "rss_shmem_kib"),
        ("Threads", "threads"),
    ])?;

    let running = count_running(&store).await?;
    let due = store
        .due(SystemTime::now(), &[NAME], usize::MAX)
        .await?
        .len();
    println!("phase=work");
    println!(
        "runtime={}",
        if multi {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    println!("seconds={seconds}");
    println!("finished={}", report.finished);
    println!("parked={}", report.parked);
    println!("failed={}", report.failed);
    for (key, value) in memory {
        println!("{key}={value}");
    }
    println!("running={running}");
    println!("due={due}");
    println!("sleeping={}", running - u64::try_from(due)?);
    Ok(())
}

/// The fields of `/proc/self/status` named in `fields` (its name there, ours), values
/// without their unit (KiB for sizes).
fn proc_status(fields: &[(&str, &'static str)]) -> Result<Vec<(&'static str, String)>, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    fields
        .iter()
        .map(|&(field, name)| {
            let value = status
                .lines()
                .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                .ok_or_else(|| format!("no `{field}` in /proc/self/status"))?;
            Ok((name, value.trim().trim_end_matches(" kB").to_owned()))
        })
        .collect()
}
