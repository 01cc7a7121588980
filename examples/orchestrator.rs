//! Orchestrator-workers: split a job into subtasks, work on them a few at a time, put the
//! results back together in order.
//!
//! `split` breaks a release checklist into a `Vec<Subtask>`; `work`, declared with
//! `workers = 3`, runs once per subtask with at most three running at once; `assemble`
//! receives the `Vec` of results in the order of the subtasks, although here the later
//! subtasks are quicker and finish first. The deps count how many `work` calls run at the
//! same time, and the example prints the highest count seen.
//!
//! ```text
//! cargo run --example orchestrator
//! ```

use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The steps' deps: a clock for the trace and a gauge of concurrent workers.
#[derive(Debug)]
pub struct Pool {
    start: Instant,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Pool {
    /// A pool with nobody at work yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most workers seen at work at the same time.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn log(&self, what: &str) {
        println!("  [{:>4} ms] {what}", self.start.elapsed().as_millis());
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

/// One piece of the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subtask {
    /// Its position in the job.
    pub index: usize,
    /// What to do.
    pub what: String,
    /// How long it takes.
    pub millis: u64,
}

/// A finished piece.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// The subtask's position.
    pub index: usize,
    /// What was done.
    pub what: String,
}

/// The job done: the run's output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The outcomes, in the order of the subtasks.
    pub outcomes: Vec<Outcome>,
}

/// A worker gave up on a subtask.
#[derive(Debug, thiserror::Error)]
#[error("subtask {0} failed")]
pub struct WorkFailed(pub usize);

/// The workflow: `split` → `work` (once per subtask, three at a time) → `assemble`.
#[workflow(deps = Pool)]
pub mod release {
    use super::{Outcome, Pool, Report, Subtask, WorkFailed};
    use flow_runtime::prelude::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// Splits the checklist into subtasks, one per line; later ones are quicker.
    ///
    /// # Errors
    ///
    /// Never; every step has an error type.
    #[step(entry)]
    pub async fn split(ctx: &Ctx<Pool>, checklist: String) -> Result<Vec<Subtask>, WorkFailed> {
        let lines: Vec<&str> = checklist
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let n = lines.len();
        let subtasks: Vec<Subtask> = lines
            .into_iter()
            .enumerate()
            .map(|(index, what)| Subtask {
                index,
                what: what.to_owned(),
                millis: 40 * (n - index) as u64,
            })
            .collect();
        ctx.deps()
            .log(&format!("split: {} subtasks", subtasks.len()));
        Ok(subtasks)
    }

    /// Does one subtask. Runs once per item of `split`'s `Vec`, at most three at a time.
    ///
    /// # Errors
    ///
    /// [`WorkFailed`] (never, here).
    #[step(after = split, workers = 3)]
    pub async fn work(ctx: &Ctx<Pool>, task: Subtask) -> Result<Outcome, WorkFailed> {
        let pool = ctx.deps();
        let now = pool.running.fetch_add(1, Ordering::SeqCst) + 1;
        pool.peak.fetch_max(now, Ordering::SeqCst);
        pool.log(&format!(
            "work #{} start ({now} running): {}",
            task.index, task.what
        ));

        tokio::time::sleep(Duration::from_millis(task.millis)).await;

        pool.running.fetch_sub(1, Ordering::SeqCst);
        pool.log(&format!("work #{} done", task.index));
        Ok(Outcome {
            index: task.index,
            what: task.what,
        })
    }

    /// Puts the outcomes together; they arrive in the order of the subtasks.
    ///
    /// # Errors
    ///
    /// Never.
    #[step(after = work, exit)]
    pub async fn assemble(ctx: &Ctx<Pool>, outcomes: Vec<Outcome>) -> Result<Report, WorkFailed> {
        let order: Vec<usize> = outcomes.iter().map(|o| o.index).collect();
        ctx.deps()
            .log(&format!("assemble: outcomes in order {order:?}"));
        Ok(Report { outcomes })
    }
}

const CHECKLIST: &str = "
    bump the version
    update the changelog
    run the test suite
    build the release binaries
    tag the release
    announce it
";

#[tokio::main]
async fn main() -> Result<(), release::FlowError> {
    let ctx = Ctx::new(Pool::new());
    let report = release::Workflow::run(&ctx, CHECKLIST.to_owned()).await?;

    println!("report:");
    for outcome in &report.outcomes {
        println!("  {}. {}", outcome.index + 1, outcome.what);
    }
    println!(
        "at most {} workers ran at once (limit: 3)",
        ctx.deps().peak()
    );
    Ok(())
}
