//! [`StepScope`]: who a step's calls belong to, and the one place they are recorded.

use crate::state::{CallKind, CallOutcome, CallRecord, Recorder, RunId};
use crate::tool::{IdempotencyKey, Visit};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The identity of one visit of one step, held by the step's [`Ctx`](crate::state::Ctx):
/// step, attempt, visit, and how many calls the visit has made. Every tool call a step makes
/// takes its position and idempotency key from here ([`StepScope::begin`]) and records its
/// outcome here ([`StepScope::end`]): a call journal (look a call up before making it,
/// record it after) belongs in these two methods.
#[derive(Clone, Debug)]
pub(crate) struct StepScope {
    step: Option<&'static str>,
    attempt: u32,
    visit: Visit,
    /// How many calls this visit has made: the next call's position.
    calls: Arc<AtomicU32>,
}

/// One call in a [`StepScope`]: its position among the visit's calls and its key.
#[derive(Debug)]
pub(crate) struct CallSlot {
    pub(crate) index: u32,
    pub(crate) key: IdempotencyKey,
    started: tokio::time::Instant,
}

impl StepScope {
    /// Outside any step: the attempt the first step will have.
    pub(crate) fn outside(attempt: u32) -> Self {
        Self {
            step: None,
            attempt,
            visit: Visit::FIRST,
            calls: Arc::default(),
        }
    }

    /// Visit `visit` of `step`, attempt `attempt`: no calls yet.
    pub(crate) fn step(step: &'static str, attempt: u32, visit: Visit) -> Self {
        Self {
            step: Some(step),
            attempt,
            visit,
            calls: Arc::default(),
        }
    }

    /// Item `index` of a `workers` step: the same step and attempt, its own visit and calls.
    pub(crate) fn item(&self, index: u32) -> Self {
        Self {
            step: self.step,
            attempt: self.attempt,
            visit: self.visit.item(index),
            calls: Arc::default(),
        }
    }

    /// The step, or `None` outside a step.
    #[must_use]
    pub(crate) fn step_name(&self) -> Option<&'static str> {
        self.step
    }

    /// Which attempt, from 1.
    #[must_use]
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Which visit.
    #[must_use]
    pub(crate) fn visit(&self) -> Visit {
        self.visit
    }

    /// A call begins: its position among the visit's calls and its idempotency key, the same
    /// when the step runs again after a crash.
    pub(crate) fn begin(&self, run_id: &RunId) -> CallSlot {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        CallSlot {
            index,
            key: IdempotencyKey::new(run_id, self.step.unwrap_or_default(), self.visit, index),
            started: tokio::time::Instant::now(),
        }
    }

    /// A call ended after `attempts` tries with `outcome`: recorded in the run's history.
    pub(crate) fn end(
        &self,
        recorder: &Recorder,
        slot: &CallSlot,
        kind: CallKind,
        name: &'static str,
        attempts: u32,
        outcome: CallOutcome,
    ) {
        let elapsed: Duration = slot.started.elapsed();
        recorder.push(
            CallRecord::new(
                kind,
                name,
                self.step.unwrap_or_default(),
                slot.index,
                attempts,
                elapsed,
                outcome,
            )
            .with_visit(self.visit),
        );
    }
}
