//! The envelope of a run's state: [`Checkpoint`], what a store keeps after every step, and
//! [`StoredEvent`], what it keeps in a run's inbox.

use crate::state::{CallRecord, RunId};
use std::fmt;
use std::time::SystemTime;

/// One stored state of a run: written after every step.
///
/// `state` is the workflow's `FlowState` as JSON; `workflow` and `fingerprint` say which code
/// wrote it, so that a store can refuse to resume a run with code whose graph has changed.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Checkpoint {
    /// The run.
    pub run_id: RunId,
    /// The workflow's name (its module's name).
    pub workflow: String,
    /// The workflow's `FINGERPRINT` when the state was written.
    pub fingerprint: String,
    /// The step (or branch) that just completed.
    pub step: String,
    /// Whether the run has finished: `state` is `FlowState::Completed`.
    pub finished: bool,
    /// The state, as JSON.
    pub state: serde_json::Value,
    /// The tool calls and output deliveries the step made, in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRecord>,
    /// When the run is due next: after a [`Sleep`](crate::state::Sleep), or when a step's
    /// event wait times out. `None`: now. Read back for a run that waits for an event (see
    /// [`waiting`](Self::waiting)), the wait's deadline, also once the event has arrived and
    /// the run is due sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<SystemTime>,
    /// Read back only: the step that waits for an event until `wake_at` (set by
    /// [`Store::wait`](crate::store::Store::wait), cleared by the next checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Written only: the event the step consumed ([`StoredEvent::id`]), removed from the
    /// run's inbox with this checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_event: Option<u64>,
    /// Which attempt of the run's next step has started. Written: 1 when the run goes straight
    /// on into its next step after this checkpoint (that step counts as started once the
    /// checkpoint is committed), 0 when the run parks or has finished. Read back by
    /// [`Store::load_to_resume`](crate::store::Store::load_to_resume): the attempt number the resumed step gets, this resume
    /// counted, so that a step interrupted by a crash runs again as attempt 2.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The run's trace context, a W3C `traceparent` (`00-{trace id}-{span id}-{flags}`): the
    /// span the run began in, so that each later turn of the run (after a park, a crash, a
    /// restart) continues the same trace. Written with the checkpoints of a run traced with
    /// OpenTelemetry (feature `otel`). A store keeps the first one written for a run and reads
    /// it back with every checkpoint of the run ([`latest`](crate::store::Store::latest),
    /// [`load_to_resume`](crate::store::Store::load_to_resume)), whatever later checkpoints
    /// carry: a run is one trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Written only: the fence of the writer's lease on the run, when an engine writes it
    /// (see [`RunQueue`](crate::store::RunQueue#leases-and-fencing)). The store refuses the
    /// checkpoint, changing nothing, unless it is the run's current fence. `None`: not
    /// fenced.
    #[serde(skip)]
    pub fence: Option<crate::store::Fence>,
    /// Written only: the checkpoint starts a new run. A store that has the run already, in
    /// any state, refuses it with [`StoreErrorKind::Exists`](crate::error::StoreErrorKind::Exists)
    /// and changes nothing, in one atomic step with the check: two starts of one run id
    /// never both write, and a late one never resets a run that has moved on.
    #[serde(skip)]
    pub new_run: bool,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's `skip_serializing_if` passes a reference"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Checkpoint {
    /// A checkpoint, for stores that read one back.
    #[must_use]
    pub fn new(
        run_id: RunId,
        workflow: impl Into<String>,
        fingerprint: impl Into<String>,
        step: impl Into<String>,
        finished: bool,
        state: serde_json::Value,
    ) -> Self {
        Self {
            run_id,
            workflow: workflow.into(),
            fingerprint: fingerprint.into(),
            step: step.into(),
            finished,
            state,
            calls: Vec::new(),
            wake_at: None,
            waiting: None,
            consumed_event: None,
            attempt: 0,
            trace: None,
            fence: None,
            new_run: false,
        }
    }

    /// The checkpoint with the attempt of the run's next step (see [`Checkpoint::attempt`]).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The checkpoint with the time the run is due next.
    #[must_use]
    pub fn with_wake_at(mut self, wake_at: Option<SystemTime>) -> Self {
        self.wake_at = wake_at;
        self
    }

    /// The checkpoint, read back, of a run waiting in step `step` for an event.
    #[must_use]
    pub fn with_waiting(mut self, step: Option<String>) -> Self {
        self.waiting = step;
        self
    }

    /// The checkpoint with the event its step consumed.
    #[must_use]
    pub fn with_consumed_event(mut self, id: Option<u64>) -> Self {
        self.consumed_event = id;
        self
    }

    /// The checkpoint with the run's trace context (see [`Checkpoint::trace`]).
    #[must_use]
    pub fn with_trace(mut self, trace: Option<String>) -> Self {
        self.trace = trace;
        self
    }

    /// The checkpoint, written under a lease with `fence` (see [`Checkpoint::fence`]).
    #[must_use]
    pub fn with_fence(mut self, fence: Option<crate::store::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// The checkpoint, as the first of a new run (see [`Checkpoint::new_run`]).
    #[must_use]
    pub fn starting_a_run(mut self) -> Self {
        self.new_run = true;
        self
    }

    /// The checkpoint with the calls its step made.
    #[must_use]
    pub fn with_calls(mut self, calls: Vec<CallRecord>) -> Self {
        self.calls = calls;
        self
    }
}

// The state is left out: it holds the workflow's data, which may hold anything.
impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("run_id", &self.run_id)
            .field("workflow", &self.workflow)
            .field("fingerprint", &self.fingerprint)
            .field("step", &self.step)
            .field("finished", &self.finished)
            .field("calls", &self.calls)
            .field("wake_at", &self.wake_at)
            .field("waiting", &self.waiting)
            .field("consumed_event", &self.consumed_event)
            .field("attempt", &self.attempt)
            .field("trace", &self.trace)
            .field("fence", &self.fence)
            .field("new_run", &self.new_run)
            .finish_non_exhaustive()
    }
}

/// An event in a run's inbox.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StoredEvent {
    /// Its number in the store, increasing in the order events were sent.
    pub id: u64,
    /// Its name (the event type's, see [`EventOf`](crate::state::EventOf)).
    pub name: String,
    /// Its value, as JSON.
    pub payload: serde_json::Value,
}

impl StoredEvent {
    /// An event, for stores that read one back.
    #[must_use]
    pub fn new(id: u64, name: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            id,
            name: name.into(),
            payload,
        }
    }
}
