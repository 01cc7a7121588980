//! [`StepScope`]: who a step's calls belong to, and the one place they are recorded.

use crate::state::{CallKind, CallOutcome, CallRecord, Recorder, RunId};
use crate::store::{DynStore, JournalEntry, JournalResult};
use crate::tool::{CallError, IdempotencyKey, Tool, ToolError, Visit};
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
    /// How many calls this visit has made: the next call's position. `None` outside a step,
    /// where the context's own counter counts (so that a new context allocates no counter).
    calls: Option<Arc<AtomicU32>>,
}

/// How a call is recorded in the run's history: its kind, and for a model call the tokens
/// its output says it used.
pub(crate) struct Annotate<O> {
    pub(crate) kind: CallKind,
    pub(crate) usage: fn(&O) -> Option<crate::model::Usage>,
}

impl<O> Annotate<O> {
    /// A plain tool call.
    pub(crate) fn tool() -> Self {
        Self {
            kind: CallKind::Tool,
            usage: |_| None,
        }
    }
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
            calls: None,
        }
    }

    /// Visit `visit` of `step`, attempt `attempt`: no calls yet.
    pub(crate) fn step(step: &'static str, attempt: u32, visit: Visit) -> Self {
        Self {
            step: Some(step),
            attempt,
            visit,
            calls: Some(Arc::default()),
        }
    }

    /// Item `index` of a `workers` step: the same step and attempt, its own visit and calls.
    pub(crate) fn item(&self, index: u32) -> Self {
        Self {
            step: self.step,
            attempt: self.attempt,
            visit: self.visit.item(index),
            calls: Some(Arc::default()),
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
    /// when the step runs again after a crash. Outside a step, `outside` (the context's own
    /// counter) gives the position.
    pub(crate) fn begin(&self, run_id: &RunId, outside: &AtomicU32) -> CallSlot {
        let index = self
            .calls
            .as_deref()
            .unwrap_or(outside)
            .fetch_add(1, Ordering::Relaxed);
        CallSlot {
            index,
            key: IdempotencyKey::new(run_id, self.step.unwrap_or_default(), self.visit, index),
            started: tokio::time::Instant::now(),
        }
    }

    /// The slot of the call at `index` of this visit, taken earlier by [`begin`](Self::begin)
    /// (an approval's, made once approved).
    pub(crate) fn slot_at(&self, run_id: &RunId, index: u32) -> CallSlot {
        CallSlot {
            index,
            key: IdempotencyKey::new(run_id, self.step.unwrap_or_default(), self.visit, index),
            started: tokio::time::Instant::now(),
        }
    }

    /// A call ended after `attempts` tries with `outcome`: recorded in the run's history.
    #[allow(clippy::too_many_arguments)] // one per field of the record
    pub(crate) fn end(
        &self,
        recorder: &Recorder,
        slot: &CallSlot,
        kind: CallKind,
        name: &'static str,
        attempts: u32,
        outcome: CallOutcome,
        usage: Option<crate::model::Usage>,
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
            .with_visit(self.visit)
            .with_usage(usage),
        );
    }

    /// The call journal's result for `slot`, when the store recorded it: the step runs again
    /// and this call completed before, so the tool is not called. The call goes into the run's
    /// history unless it is there already (an earlier attempt of the step in this process).
    /// `None` when the call was never recorded (or there is no store, or no step).
    pub(crate) async fn replay<T: Tool>(
        &self,
        store: Option<&dyn DynStore>,
        run_id: &RunId,
        recorder: &Recorder,
        slot: &CallSlot,
        annotate: &Annotate<T::Output>,
    ) -> Option<Result<T::Output, CallError>> {
        let (store, step) = (store?, self.step?);
        let entry = match store
            .recorded_call_boxed(run_id, step, self.visit, slot.index)
            .await
        {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            Err(source) => {
                return Some(Err(CallError::Journal {
                    tool: T::NAME,
                    source,
                }));
            }
        };
        if entry.tool != T::NAME {
            return Some(Err(CallError::Diverged {
                tool: T::NAME,
                position: slot.index,
                recorded: entry.tool,
            }));
        }
        let (result, outcome) = match entry.result {
            JournalResult::Output(value) => (
                serde_json::from_value(value).map_err(|source| CallError::Replay {
                    tool: T::NAME,
                    position: slot.index,
                    source,
                }),
                CallOutcome::Ok,
            ),
            JournalResult::Failed(message) => {
                let outcome = CallOutcome::Failed(message.clone());
                let error = CallError::Rejected {
                    tool: T::NAME,
                    attempt: entry.attempts,
                    source: ToolError::permanent(message),
                };
                (Err(error), outcome)
            }
        };
        if !recorder.has(step, self.visit, slot.index) {
            let usage = result.as_ref().ok().and_then(annotate.usage);
            recorder.push(
                CallRecord::new(
                    annotate.kind,
                    T::NAME,
                    step,
                    slot.index,
                    entry.attempts,
                    Duration::ZERO,
                    outcome,
                )
                .with_visit(self.visit)
                .with_usage(usage),
            );
        }
        Some(result)
    }

    /// The journal entry of a completed call, for [`record`](Self::record) before the step
    /// goes on: its output, or
    /// its permanent failure ([`CallError::Rejected`]). Other failures (retries exhausted, a
    /// timeout, a credential) are not recorded: the call is made again if the step runs again.
    ///
    /// # Errors
    ///
    /// [`CallError::Journal`] when the output does not serialize.
    pub(crate) fn journal_entry<T: Tool>(
        &self,
        store: Option<&dyn DynStore>,
        run_id: &RunId,
        slot: &CallSlot,
        attempts: u32,
        result: &Result<T::Output, CallError>,
    ) -> Result<Option<JournalEntry>, CallError> {
        let (Some(_), Some(step)) = (store, self.step) else {
            return Ok(None);
        };
        let Some(recorded) = Self::journal_result::<T>(step, slot, result)? else {
            return Ok(None);
        };
        Ok(Some(JournalEntry::new(
            run_id.clone(),
            step,
            self.visit,
            slot.index,
            T::NAME,
            attempts,
            recorded,
        )))
    }

    /// Writes `entry` (from [`journal_entry`](Self::journal_entry)) to the store's journal.
    pub(crate) async fn record(
        store: &dyn DynStore,
        tool: &'static str,
        entry: JournalEntry,
    ) -> Result<(), CallError> {
        store
            .record_call_boxed(entry)
            .await
            .map_err(|source| CallError::Journal { tool, source })
    }

    /// What the journal keeps of `result`; `None` for a failure it does not keep.
    fn journal_result<T: Tool>(
        step: &str,
        slot: &CallSlot,
        result: &Result<T::Output, CallError>,
    ) -> Result<Option<JournalResult>, CallError> {
        match result {
            Ok(output) => serde_json::to_value(output)
                .map(|value| Some(JournalResult::Output(value)))
                .map_err(|e| CallError::Journal {
                    tool: T::NAME,
                    source: crate::error::StoreError::of_kind(
                        crate::error::StoreErrorKind::Unstorable,
                        format!(
                            "the output of call {} of step `{step}` does not serialize as JSON: {e}",
                            slot.index
                        ),
                    ),
                }),
            Err(CallError::Rejected { source, .. }) => {
                Ok(Some(JournalResult::Failed(source.to_string())))
            }
            Err(_) => Ok(None),
        }
    }
}
