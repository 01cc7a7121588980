//! Errors the runtime itself raises, as opposed to the errors of a workflow's own steps.
//!
//! A workflow's generated `FlowError` has one variant per step, holding that step's own
//! error, and a `Runtime` variant holding a [`RuntimeError`].

use crate::state::RunId;
use crate::store::RunStatus;

/// A failure of the runtime around the steps: storing a checkpoint, or resuming from a state
/// that cannot continue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The store refused or failed to save a checkpoint. The step that produced it completed,
    /// but its result is not durable: the run stopped so that it never runs ahead of its
    /// last stored state.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: could not store the checkpoint after step `{step}`"
    )]
    Checkpoint {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step whose result was being stored.
        step: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A state could not be turned into a checkpoint (its `Serialize` impl failed).
    #[error(
        "run `{run_id}` of workflow `{workflow}`: could not serialise the state after step `{step}`"
    )]
    Serialize {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step that had just completed.
        step: &'static str,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The store could not say whether a run exists.
    #[error("run `{run_id}` of workflow `{workflow}`: could not load its latest checkpoint")]
    Load {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// [`Workflow::run`](crate::state::Workflow::run) starts a new run, but the context's store
    /// has a run with this id already: this context ran it before (a context is one run, and its
    /// id, unless given, is drawn when it is built), or another did. Nothing ran, and the stored
    /// run is left as it is.
    #[error(
        "run `{run_id}` of workflow `{workflow}` was not started: the store already has a run with this id; continue it with `run_or_resume`, or start the new run with a `Ctx` of its own (one built without `.run_id(..)` draws a new id)"
    )]
    AlreadyStarted {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
    },
    /// [`Workflow::run`](crate::state::Workflow::run) (or `run_or_resume`, or the typestate
    /// `Flow`'s entry step) starts a new run on a context without a store that has started a
    /// run already (itself or a clone of it).
    /// A context is one run: a second one would run under the first one's id, so its tool
    /// calls and outputs would repeat the first run's idempotency keys, and a tool or sink that
    /// drops repeated keys would drop them. Nothing ran.
    #[error(
        "run `{run_id}` of workflow `{workflow}` was not started: this `Ctx` has started a run already, and a context is one run (its id keys the run's tool calls and outputs); build a `Ctx` for each run (`ctx.next_run()` gives one with the same deps, store and tools)"
    )]
    CtxReused {
        /// The context's run id, the first run's.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
    },
    /// The store failed to record the start of a run that
    /// [`Workflow::run`](crate::state::Workflow::run) began, or refused its input as one it
    /// could not read back. Nothing ran.
    #[error("run `{run_id}` of workflow `{workflow}`: could not store its start")]
    Start {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A stored run was written by another workflow, or by code whose graph or step signatures
    /// have changed since (another fingerprint). It is not resumed, and its state is left as
    /// it is; a run of the same workflow with another fingerprint is marked
    /// [`RunStatus::Incompatible`] in a store with run control, so that operators can find it.
    #[error(
        "run `{run_id}` was stored by workflow `{stored_workflow}` with fingerprint `{stored_fingerprint}`, \
         but this is workflow `{workflow}` with fingerprint `{fingerprint}`; it is not resumed, and its stored state is left as it is"
    )]
    Incompatible {
        /// The run.
        run_id: RunId,
        /// The workflow asked to resume it.
        workflow: &'static str,
        /// That workflow's fingerprint now.
        fingerprint: &'static str,
        /// The workflow that stored it.
        stored_workflow: String,
        /// The fingerprint it was stored with.
        stored_fingerprint: String,
    },
    /// The store has set the run aside: run control paused or cancelled it (see
    /// [`RunControl`](crate::store::RunControl)), an [`Engine`](crate::state::Engine) marked it
    /// failed, or its stored record is corrupt (see [`RunStatus::is_stopped`]).
    ///
    /// With `step`, the run was stopped while that step ran: the step completed, but the store
    /// refused its checkpoint, so its result was not stored and the run stopped before its next
    /// step. When a paused or failed run is unpaused and resumed, that step runs again
    /// (at-least-once, as after a crash); the steps stored before it do not. Without `step`,
    /// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) refused the run before
    /// running anything.
    #[error("run `{run_id}` of workflow `{workflow}` is {status}: {}", stopped(*step, *status))]
    Stopped {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step whose result was not stored, or `None` when nothing ran.
        step: Option<&'static str>,
        /// Why: [`RunStatus::Paused`], [`RunStatus::Cancelled`], [`RunStatus::Failed`] or
        /// [`RunStatus::Corrupt`].
        status: RunStatus,
    },
    /// The run is waiting, durably: a step returned [`Sleep`](crate::state::Sleep), or a step
    /// waits for an event that has not arrived. Its state is stored; an
    /// [`Engine`](crate::state::Engine) continues it at `until` (or when the event arrives),
    /// and so does [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) called
    /// then. Not a failure: nothing is lost, nothing needs undoing.
    #[error("run `{run_id}` of workflow `{workflow}` is waiting {}, until {}", waiting_for(*event), crate::state::format_time(*until))]
    Parked {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step it waits before, or in (for an event).
        step: &'static str,
        /// The event it waits for, or `None` for a sleep.
        event: Option<&'static str>,
        /// When it is due at the latest.
        until: std::time::SystemTime,
    },
    /// A step waits for an event, but the run's context has no store to keep the event inbox
    /// and the wait in: give it one with `Ctx::builder(..).store(..)`.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: step `{step}` waits for event `{event}`, but the run has no store \
         to receive it in; give the context a store (`Ctx::builder(..).store(store)`) and run it with an `Engine`"
    )]
    NoInbox {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The waiting step.
        step: &'static str,
        /// The event's name.
        event: &'static str,
    },
    /// The store could not park the run or read its event inbox.
    #[error("run `{run_id}` of workflow `{workflow}`: step `{step}` could not wait")]
    Wait {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The waiting step.
        step: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// An event in the run's inbox does not deserialise into the type the step waits for.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: event `{event}` for step `{step}` cannot be read"
    )]
    CorruptEvent {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The waiting step.
        step: &'static str,
        /// The event's name.
        event: &'static str,
        /// The deserialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The state after a step would not read back as it was written (a NaN or infinite
    /// number, which JSON cannot hold; nesting deeper than
    /// [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)), so it was not stored: the store
    /// acknowledges only what it can read back. Nothing was written for this step; the run
    /// stopped before its next step.
    ///
    /// A step's output on its way to sinks (see [`crate::output`]) is checked the same way,
    /// with or without a store, before any sink sees it: an output that would not read back
    /// fails the run here, and no sink (nor dead letter) receives it.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: the state after step `{step}` was not stored: {reason}"
    )]
    Unstorable {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step that had just completed.
        step: &'static str,
        /// What is wrong with the state, and where.
        reason: String,
    },
    /// A stored state does not deserialise into this workflow's `FlowState`.
    #[error("run `{run_id}` of workflow `{workflow}`: its stored state cannot be read")]
    CorruptState {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The deserialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `resume` was handed a state that no run can be in, e.g. a fan-out whose pending branches
    /// lost their input. The state is left as it was.
    #[error("workflow `{workflow}` cannot resume at `{step}`: {reason}")]
    InvalidState {
        /// The workflow's name.
        workflow: &'static str,
        /// The step the state points at.
        step: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A step's output could not be delivered to its sinks (see [`crate::output`]); the run
    /// stopped before the step's checkpoint, so resuming runs the step and delivers again.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// Output sinks are attached to steps that the workflow does not have, or to routing steps
    /// (whose output is the route taken, not a result: attach to the steps they lead to).
    /// Checked before the run's first step, so nothing ran.
    #[error(
        "workflow `{workflow}` has no step {} that sinks can be attached to; steps with outputs: {}",
        quoted(steps),
        quoted(valid)
    )]
    UnknownOutputStep {
        /// The workflow's name.
        workflow: &'static str,
        /// The steps named by the attachments.
        steps: Vec<String>,
        /// The steps sinks may be attached to.
        valid: Vec<&'static str>,
    },
    /// A step declares a tool that the run's [`Toolbox`](crate::tool::Toolbox) does not
    /// have. Checked before the run's first step, so nothing ran.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: step `{step}` declares tool `{tool}`, but the run's toolbox has no such tool; \
         add it with `Toolbox::new().with(PolicyTool::new(…))` and `Ctx::builder(…).tools(toolbox)`"
    )]
    MissingTool {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The first step that declares the tool.
        step: &'static str,
        /// The tool's name.
        tool: &'static str,
    },
    /// Code inside the run panicked: a step, a tool it called, a sink its output went to, or
    /// the runtime around them. The run ended there, like a step that failed: it keeps its
    /// latest checkpoint, an [`Engine`](crate::state::Engine) sets it aside as
    /// [`Failed`](RunStatus::Failed), and the panic does not unwind into the caller. Fix what
    /// panicked (the message says what), then retry the run (unpause it).
    #[error(
        "run `{run_id}` of workflow `{workflow}`: {} panicked: {message}; the run is stopped, \
         fix the panic and retry it",
        panicked_in(*step)
    )]
    Panicked {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: &'static str,
        /// The step that was running (its own code, a tool it called or a sink its output went
        /// to), or `None` when the runtime panicked between steps.
        step: Option<&'static str>,
        /// The panic's message (`panic!`'s text), or a placeholder when the panic carried
        /// something other than a string.
        message: String,
    },
}

/// Runs `future`, turning a panic inside it into the panic's message, so that a run ends with
/// an error instead of unwinding through its caller (or an engine's task).
///
/// `AssertUnwindSafe`: after a panic the future is dropped, never polled again, and the
/// run's shared state it may have left half-updated is behind poison-tolerant locks that
/// hold only records of calls; the run then fails from its last checkpoint.
///
/// A plain function, not an `async fn`: an `async fn` would keep `future` twice in its state
/// (the argument and the moved copy), doubling the size of every run's future.
pub(crate) fn catch_panic<F: std::future::Future>(
    future: F,
) -> impl std::future::Future<Output = Result<F::Output, String>> {
    use futures_util::FutureExt as _;
    std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .map(|caught| caught.map_err(|payload| panic_message(&*payload)))
}

/// The text of a panic: what `panic!("…")` and `.expect("…")` carry.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a payload that is not a string".to_owned())
}

/// Where [`RuntimeError::Panicked`] happened.
fn panicked_in(step: Option<&str>) -> String {
    step.map_or_else(|| "the runtime".to_owned(), |step| format!("step `{step}`"))
}

/// What kind of failure a [`StoreError`] is, for callers that decide whether to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The checkpoint is over the store's size limit. Retrying cannot help.
    TooLarge,
    /// A stored record cannot be read back. The record is kept; retrying cannot help.
    Corrupt,
    /// The write conflicts with what is stored (e.g. a run id that belongs to another
    /// workflow). Retrying cannot help.
    Conflict,
    /// The run is paused, so the store refused its checkpoint (see
    /// [`RunControl`](crate::store::RunControl)). Retrying helps only once it is unpaused.
    Paused,
    /// The run is cancelled, so the store refused its checkpoint. Retrying cannot help.
    Cancelled,
    /// The run failed under an engine, so the store refused its checkpoint. Retrying helps
    /// only once it is unpaused.
    Failed,
    /// The writer's lease on the run has passed to another worker (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)), so the store refused the
    /// write and changed nothing. The writer stops the run, which its new holder goes on
    /// with; retrying cannot help.
    LeaseLost,
    /// The run is not in the store (e.g. an event sent to a run that was never started).
    UnknownRun,
    /// The store has the run already, so a checkpoint that starts it (see
    /// [`Checkpoint::new_run`](crate::store::Checkpoint::new_run)) changed nothing.
    Exists,
    /// The store does not do this (e.g. an event inbox in a store without one).
    Unsupported,
    /// The value would not read back as it was written (nested deeper than
    /// [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)), so nothing was written. Retrying
    /// cannot help.
    Unstorable,
    /// The store is not reachable or has stopped; a retry may succeed.
    Unavailable,
    /// Anything else.
    Other,
}

/// A [`Store`](crate::store::Store) failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A store error with a message, of kind [`StoreErrorKind::Other`].
    pub fn new(message: impl Into<String>) -> Self {
        Self::of_kind(StoreErrorKind::Other, message)
    }

    /// A store error of a given kind.
    pub fn of_kind(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A store error caused by another error, of kind [`StoreErrorKind::Other`].
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            kind: StoreErrorKind::Other,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The same error, of another kind.
    #[must_use]
    pub fn kind_of(mut self, kind: StoreErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

/// A [`RunControl`](crate::store::RunControl) operation failed; when it did, it changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The store has no such run: none of its checkpoints was stored, or it was pruned.
    #[error("run `{run_id}` is not in the store")]
    UnknownRun {
        /// The run.
        run_id: RunId,
    },
    /// The run's status does not allow the operation (see the table on [`RunStatus`]), e.g.
    /// cancelling a finished run.
    #[error("cannot {} run `{run_id}`: it is {status}", verb(*to))]
    Transition {
        /// The run.
        run_id: RunId,
        /// Its status, unchanged.
        status: RunStatus,
        /// The status the operation would have given it: `Paused` for `pause`, `Running` for
        /// `unpause`, `Cancelled` for `cancel`.
        to: RunStatus,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The operation that moves a run to `to`.
fn verb(to: RunStatus) -> &'static str {
    match to {
        RunStatus::Paused => "pause",
        RunStatus::Running => "unpause",
        RunStatus::Cancelled => "cancel",
        _ => "change",
    }
}

/// The rest of [`RuntimeError::Stopped`]'s message.
fn waiting_for(event: Option<&str>) -> String {
    event.map_or_else(|| "(asleep)".to_owned(), |e| format!("for event `{e}`"))
}

fn stopped(step: Option<&str>, status: RunStatus) -> String {
    match (step, status) {
        (Some(step), RunStatus::Paused | RunStatus::Failed) => format!(
            "it stopped after step `{step}`, whose result was not stored; the step runs again \
             when the run is unpaused and resumed"
        ),
        (Some(step), _) => format!(
            "it stopped after step `{step}`, whose result was not stored; it cannot be resumed"
        ),
        (None, RunStatus::Paused | RunStatus::Failed) => {
            "nothing ran; unpause it to resume it from its latest checkpoint".to_owned()
        }
        (None, _) => "nothing ran; it cannot be resumed".to_owned(),
    }
}

/// `a`, `b` and `c` as "`a`, `b`, `c`".
fn quoted<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}
