//! The process `tests/processes/attempts.rs` kills with `SIGKILL` in the middle of a step, then
//! starts again.
//!
//! ```text
//! attempt_worker DB LOG
//! ```
//!
//! Runs an [`Engine`] on the `SqliteStore` in `DB` with run `r` of the three-step workflow
//! [`twice`] (started if the store does not have it yet) until the run has finished. Every step
//! appends `<step> <ctx.attempt()>` to the file `LOG`; step `s2` then waits an hour on its first
//! attempt, for the test to kill the process there.
//!
//! Exits 0 once the run has finished, 1 (with a message) on any error. Its leases last
//! 500 ms, so that a worker started after a kill takes the run over soon.

use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, Setup};
use flow_runtime::store::{RunStatus, SqliteStore};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Where steps record that they ran, and with which attempt.
#[derive(Clone, Debug)]
pub struct Log(Arc<File>);

impl Log {
    /// One `write` call on an `O_APPEND` file: the line is in the kernel's file, which a
    /// `SIGKILL` does not lose, before the step goes on.
    fn record<P>(&self, ctx: &Ctx<Log, P>, step: &str) -> Result<(), std::io::Error> {
        let line = format!("{step} {}\n", ctx.attempt());
        (&*self.0).write_all(line.as_bytes())
    }
}

/// Three steps; the second hangs on its first attempt.
#[workflow(deps = Log)]
pub mod twice {
    use super::*;

    #[step(entry)]
    pub async fn s1(ctx: &Ctx<Log>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, "s1")?;
        Ok(x + 1)
    }

    #[step(after = s1)]
    pub async fn s2(ctx: &Ctx<Log>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, "s2")?;
        if ctx.attempt() == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(x + 1)
    }

    #[step(after = s2, exit)]
    pub async fn s3(ctx: &Ctx<Log>, x: u64) -> Result<u64, std::io::Error> {
        ctx.deps().record(ctx, "s3")?;
        Ok(x + 1)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, log] = args.as_slice() else {
        eprintln!("usage: attempt_worker DB LOG");
        return ExitCode::FAILURE;
    };
    match work(db, log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("attempt_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

fn work(db: &str, log: &str) -> Result<(), String> {
    let store = Arc::new(SqliteStore::open(db).map_err(|e| e.to_string())?);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{log}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let engine = Engine::builder(Arc::clone(&store))
            .register::<twice::Workflow>(Setup::new(Log(Arc::new(file))))
            .poll_interval(Duration::from_millis(10))
            // Short, so that the test's second worker takes the run over soon after the kill.
            .lease(Duration::from_millis(500))
            .build();
        let run = engine
            .start::<twice::Workflow>("r", 0)
            .await
            .map_err(|e| e.to_string())?;
        let finished = async {
            loop {
                match store.status(&run).await {
                    Ok(Some(info)) if info.status != RunStatus::Running => return,
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        };
        engine
            .run_until(finished)
            .await
            .map_err(|e| e.to_string())?;
        match store.status(&run).await.map_err(|e| e.to_string())? {
            Some(info) if info.status == RunStatus::Finished => Ok(()),
            other => Err(format!("run `r` ended as {other:?}")),
        }
    })
}
