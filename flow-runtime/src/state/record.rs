use crate::state::RunId;
use crate::tool::{IdempotencyKey, Visit};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// What a step called outside itself: a tool, or an output sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallKind {
    /// A [`Tool`](crate::tool::Tool), through the step's context.
    Tool,
    /// An output sink delivering the step's result (see [`output`](crate::output)).
    Output,
    /// A [`Model`](crate::model::Model) call of an agent ([`Ctx::agent`](crate::state::Ctx::agent)):
    /// a tool call whose record carries the tokens it used ([`CallRecord::usage`]).
    Model,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", content = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CallOutcome {
    /// It succeeded, after [`CallRecord::attempts`] attempts.
    Ok,
    /// It failed for good; the error's message (never a secret: tool errors are the tool's own
    /// words, and credentials are never part of them).
    Failed(String),
}

/// One call a step made to a tool or an output sink: kept in the run's history with the
/// checkpoint of the step that made it.
///
/// The run, [`step`](Self::step), [`visit`](Self::visit) and [`index`](Self::index) identify the
/// call: [`idempotency_key`](Self::idempotency_key) gives the key the tool or sink received with
/// it, so calls of a step inside a loop or of a `workers` step, whose indices repeat from one
/// turn or item to the next, stay told apart.
///
/// ```
/// use flow_runtime::state::{CallKind, CallOutcome, CallRecord, RunId};
/// use flow_runtime::tool::{IdempotencyKey, Visit};
/// use std::time::Duration;
///
/// // The first call of `think` on the loop's third turn.
/// let record = CallRecord::new(
///     CallKind::Tool, "model", "think", 0, 1, Duration::from_millis(40), CallOutcome::Ok,
/// )
/// .with_visit(Visit::after(2));
/// let run = RunId::from("run-1");
/// assert_eq!(
///     record.idempotency_key(&run),
///     IdempotencyKey::new(&run, "think", Visit::after(2), 0)
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CallRecord {
    /// A tool call or an output delivery.
    pub kind: CallKind,
    /// The tool's `NAME`, or the sink's name.
    pub name: String,
    /// The step that made the call.
    pub step: String,
    /// Which visit of the step made the call: the loop's turn (how many back-edges the run had
    /// taken when the step began) and, in a `workers` step, the item. [`Visit::FIRST`] for a
    /// step outside loops, and for calls stored before visits were recorded.
    #[serde(default)]
    pub visit: Visit,
    /// The call's position among the calls of its visit of the step (a loop's turn, a
    /// `workers` item), from 0: with the run, the step and the visit, what its idempotency key
    /// is derived from.
    pub index: u32,
    /// How many attempts it took (1 when it was not retried).
    pub attempts: u32,
    /// From the first attempt's start to the end of the last one, waits included.
    #[serde(with = "micros")]
    pub duration: Duration,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: CallOutcome,
    /// For a [`Model`](CallKind::Model) call that was answered: the tokens it used, as the
    /// provider counted them (`None` when it did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::model::Usage>,
}

impl CallRecord {
    /// A record of a call made on the step's [`Visit::FIRST`] (see
    /// [`with_visit`](Self::with_visit)), for stores and sinks that make their own.
    #[must_use]
    pub fn new(
        kind: CallKind,
        name: impl Into<String>,
        step: impl Into<String>,
        index: u32,
        attempts: u32,
        duration: Duration,
        outcome: CallOutcome,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            step: step.into(),
            visit: Visit::FIRST,
            index,
            attempts,
            duration,
            outcome,
            usage: None,
        }
    }

    /// The same record, with the tokens a model call used.
    #[must_use]
    pub fn with_usage(mut self, usage: Option<crate::model::Usage>) -> Self {
        self.usage = usage;
        self
    }

    /// The same record, made on visit `visit` of its step.
    #[must_use]
    pub fn with_visit(mut self, visit: Visit) -> Self {
        self.visit = visit;
        self
    }

    /// The idempotency key the call had in run `run_id`: the key a tool received in its
    /// [`ToolCtx`](crate::tool::ToolCtx), or a sink with its
    /// [`Delivery`](crate::output::Delivery). Each of a run's calls has its own.
    #[must_use]
    pub fn idempotency_key(&self, run_id: &RunId) -> IdempotencyKey {
        match self.kind {
            CallKind::Tool | CallKind::Model => {
                IdempotencyKey::new(run_id, &self.step, self.visit, self.index)
            }
            CallKind::Output => {
                IdempotencyKey::for_output(run_id, &self.step, self.visit, self.index)
            }
        }
    }
}

/// Durations as whole microseconds: exact enough for a history and readable in SQL.
mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// The calls a run has made, shared by all its step contexts: each checkpoint takes its step's
/// calls along to the store, and [`Ctx::calls`](crate::state::Ctx::calls) shows them all, failed
/// steps' included.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    inner: Mutex<Calls>,
    /// Whether `pending` may hold calls: set under the lock by every push, so that a step
    /// that called nothing (most steps) takes its calls without locking.
    pending: AtomicBool,
}

#[derive(Debug, Default)]
struct Calls {
    /// Every call, in the order they ended.
    all: Vec<CallRecord>,
    /// The calls no checkpoint has taken yet.
    pending: Vec<CallRecord>,
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, record: CallRecord) {
        let mut calls = self.lock();
        calls.all.push(record.clone());
        calls.pending.push(record);
        self.pending.store(true, Ordering::Release);
    }

    pub(crate) fn extend(&self, records: Vec<CallRecord>) {
        if records.is_empty() {
            return;
        }
        let mut calls = self.lock();
        calls.all.extend(records.iter().cloned());
        calls.pending.extend(records);
        self.pending.store(true, Ordering::Release);
    }

    /// Whether call `index` of `visit` of `step` is recorded already.
    pub(crate) fn has(&self, step: &str, visit: Visit, index: u32) -> bool {
        self.lock()
            .all
            .iter()
            .any(|r| r.index == index && r.visit == visit && r.step == step)
    }

    pub(crate) fn all(&self) -> Vec<CallRecord> {
        self.lock().all.clone()
    }

    /// Removes and returns the pending calls of `step`.
    pub(crate) fn take(&self, step: &str) -> Vec<CallRecord> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut calls = self.lock();
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut calls.pending)
            .into_iter()
            .partition(|r| r.step == step);
        calls.pending = kept;
        if calls.pending.is_empty() {
            self.pending.store(false, Ordering::Release);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_visit_as_json_and_an_older_one_reads_as_the_first_visit() {
        let record = CallRecord::new(
            CallKind::Tool,
            "model",
            "think",
            1,
            2,
            Duration::from_micros(1500),
            CallOutcome::Ok,
        )
        .with_visit(Visit::after(3).item(2));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json["visit"],
            serde_json::json!({ "back_edges": 3, "item": 2 })
        );
        assert_eq!(
            serde_json::from_value::<CallRecord>(json.clone()).unwrap(),
            record
        );

        // Written before records had a visit.
        let mut old = json;
        old.as_object_mut().unwrap().remove("visit");
        let old: CallRecord = serde_json::from_value(old).unwrap();
        assert_eq!(old.visit, Visit::FIRST);
        assert_eq!(old, record.clone().with_visit(Visit::FIRST));
    }

    #[test]
    fn a_record_gives_the_key_of_its_call() {
        let run = RunId::from("run-1");
        let visit = Visit::after(1).item(0);
        let tool = CallRecord::new(
            CallKind::Tool,
            "model",
            "each",
            2,
            1,
            Duration::ZERO,
            CallOutcome::Ok,
        )
        .with_visit(visit);
        assert_eq!(
            tool.idempotency_key(&run),
            IdempotencyKey::new(&run, "each", visit, 2)
        );
        let mut output = tool.clone();
        output.kind = CallKind::Output;
        assert_eq!(
            output.idempotency_key(&run),
            IdempotencyKey::for_output(&run, "each", visit, 2)
        );
        assert_ne!(output.idempotency_key(&run), tool.idempotency_key(&run));
        assert_ne!(
            tool.clone()
                .with_visit(Visit::after(1))
                .idempotency_key(&run),
            tool.idempotency_key(&run)
        );
    }

    #[test]
    fn take_returns_a_steps_pending_calls_once_and_keeps_the_others() {
        let record = |step| {
            CallRecord::new(
                CallKind::Tool,
                "model",
                step,
                0,
                1,
                Duration::ZERO,
                CallOutcome::Ok,
            )
        };
        let recorder = Recorder::default();
        assert!(recorder.take("a").is_empty());
        recorder.push(record("a"));
        recorder.extend(vec![record("b"), record("a")]);
        recorder.extend(Vec::new());
        assert_eq!(recorder.take("a"), [record("a"), record("a")]);
        assert!(recorder.take("a").is_empty());
        assert_eq!(recorder.take("b"), [record("b")]);
        assert!(recorder.take("b").is_empty());
        // Emptied, then called again: the new call is pending.
        recorder.push(record("a"));
        assert_eq!(recorder.take("a"), [record("a")]);
        assert_eq!(recorder.all().len(), 4);
    }
}
