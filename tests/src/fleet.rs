//! The workflow many engines share in the multi-worker tests (`tests/processes/fleet.rs`):
//! [`fleet`], six steps in a line, each recording that it ran, sleeping a little, and making one
//! journaled call of [`Mix`]. The child process `src/bin/fleet_worker.rs` runs it under an
//! [`Engine`](flow_runtime::state::Engine); the test starts the runs, kills and pauses the
//! workers, and reads what happened from the store, the effects log, the service and the
//! outputs file.

use crate::keyed::{Mix, mix};
use flow_runtime::prelude::*;
use std::fs::File;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Steps in the workflow.
pub const STEPS: u64 = 6;

/// A step's value: the number the steps mix, and which worker (process id) completed each
/// step so far, so that the run's output says who wrote each checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trail {
    /// The value.
    pub x: u64,
    /// The process that completed each step, in order.
    pub by: Vec<u32>,
}

/// What every step of a worker shares: the effects log, and how long each step sleeps.
#[derive(Clone, Debug)]
pub struct Effects {
    log: Arc<File>,
    step: Duration,
}

impl Effects {
    /// Steps append to `log` (opened for appending) and sleep `step` (plus up to 2 ms).
    #[must_use]
    pub fn new(log: File, step: Duration) -> Self {
        Self {
            log: Arc::new(log),
            step,
        }
    }

    /// Appends `run fK pid` (one `write` on an `O_APPEND` file: in the kernel's hands, which
    /// a `SIGKILL` does not lose, before the step goes on), then sleeps.
    async fn record<P>(&self, ctx: &Ctx<Self, P>, k: u64) -> Result<(), std::io::Error> {
        let line = format!("{} f{k} {}\n", ctx.run_id(), std::process::id());
        (&*self.log).write_all(line.as_bytes())?;
        let jitter = line.bytes().map(u64::from).sum::<u64>() % 3;
        tokio::time::sleep(self.step + Duration::from_millis(jitter)).await;
        Ok(())
    }
}

/// What step `k` makes of `x` and its call's result: the test computes the same.
#[must_use]
pub fn step_value(x: u64, k: u64) -> u64 {
    mix(x ^ k).wrapping_add(k)
}

/// Run `run-i`'s final value.
#[must_use]
pub fn expected(i: u64) -> u64 {
    (1..=STEPS).fold(i, step_value)
}

/// A step's failure: the effects log, or the call.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The effects log.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The call.
    #[error(transparent)]
    Call(#[from] flow_runtime::tool::CallError),
}

async fn step<P>(ctx: &Ctx<Effects, P>, trail: Trail, k: u64) -> Result<Trail, StepError>
where
    P: flow_runtime::tool::CanCall<Mix>,
{
    ctx.deps().record(ctx, k).await?;
    let mixed = ctx.call::<Mix>(trail.x ^ k).await?;
    let mut by = trail.by;
    by.push(std::process::id());
    Ok(Trail {
        x: mixed.wrapping_add(k),
        by,
    })
}

/// Six steps in a line, each with one journaled call.
#[workflow(deps = Effects)]
pub mod fleet {
    use super::*;

    #[step(entry, tools = [Mix])]
    pub async fn f1(ctx: &Ctx<Effects, tools::F1>, x: u64) -> Result<Trail, StepError> {
        step(ctx, Trail { x, by: Vec::new() }, 1).await
    }

    #[step(after = f1, tools = [Mix])]
    pub async fn f2(ctx: &Ctx<Effects, tools::F2>, t: Trail) -> Result<Trail, StepError> {
        step(ctx, t, 2).await
    }

    #[step(after = f2, tools = [Mix])]
    pub async fn f3(ctx: &Ctx<Effects, tools::F3>, t: Trail) -> Result<Trail, StepError> {
        step(ctx, t, 3).await
    }

    #[step(after = f3, tools = [Mix])]
    pub async fn f4(ctx: &Ctx<Effects, tools::F4>, t: Trail) -> Result<Trail, StepError> {
        step(ctx, t, 4).await
    }

    #[step(after = f4, tools = [Mix])]
    pub async fn f5(ctx: &Ctx<Effects, tools::F5>, t: Trail) -> Result<Trail, StepError> {
        step(ctx, t, 5).await
    }

    #[step(after = f5, exit, tools = [Mix])]
    pub async fn f6(ctx: &Ctx<Effects, tools::F6>, t: Trail) -> Result<Trail, StepError> {
        step(ctx, t, 6).await
    }
}
