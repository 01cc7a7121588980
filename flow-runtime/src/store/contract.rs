//! The [`Store`] trait: checkpoints, events and waits; its object-safe twin; and the
//! messages every store gives for the same refusals.

use crate::error::{StoreError, StoreErrorKind};
use crate::state::RunId;
use crate::store::{
    Approval, ApprovalError, Checkpoint, Decision, Fence, JournalEntry, RunInfo, RunStatus,
    StoredEvent, WorkflowInfo,
};
use crate::tool::Visit;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

/// Where checkpoints go: the durable side of a run.
///
/// A run calls [`save`](Store::save) after every step and does not start the next step until
/// it returns `Ok`, so a store that has acknowledged a checkpoint holds a state the run can
/// resume from. Implement it for your own backend; [`MemoryStore`](crate::store::MemoryStore) keeps everything in memory.
///
/// What a store acknowledges, it must be able to read back: the runtime refuses states and
/// events that would not round-trip through JSON before they reach the store (NaN and
/// infinite numbers; nesting deeper than [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)),
/// and a store's reader must accept every value nested that deep.
///
/// [`save`](Store::save) and [`latest`](Store::latest) are all a store needs. A store that
/// also offers run control ([`RunControl`](crate::store::RunControl): pause, unpause, cancel) overrides
/// [`status`](Store::status) and [`mark_incompatible`](Store::mark_incompatible) too: they are
/// what runs ask their store to honour it.
///
/// ```
/// use flow_runtime::state::RunId;
/// use flow_runtime::store::{Checkpoint, Store};
/// use flow_runtime::error::StoreError;
///
/// /// Prints checkpoints instead of keeping them.
/// struct Print;
///
/// impl Store for Print {
///     async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
///         println!("{} after {}: {}", checkpoint.run_id, checkpoint.step, checkpoint.state);
///         Ok(())
///     }
///     async fn latest(&self, _run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
///         Ok(None)
///     }
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// Stores `checkpoint` as the latest state of its run. A checkpoint with a
    /// [fence](Checkpoint::fence) that is not the run's current one is refused with
    /// [`StoreErrorKind::LeaseLost`] and changes nothing (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)), and so is a fenced one of a
    /// run the store does not have (a fence is given only for a stored run: a stale worker's,
    /// of a run pruned meanwhile, must not bring it back). One that
    /// [starts a run](Checkpoint::new_run) is refused with [`StoreErrorKind::Exists`] and
    /// changes nothing when the store has the run already, checked in one atomic step with
    /// the write (`Engine::start` relies on it).
    fn save(&self, checkpoint: Checkpoint) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest checkpoint of a run, if any.
    fn latest(
        &self,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send;

    /// The latest checkpoint of a run about to be resumed by code with fingerprint
    /// `fingerprint`, counting a start of the step it resumes at. A store that counts attempts
    /// adds one to the run's stored count, in one atomic step with the read, when the run is
    /// due (not finished, no wake-up time in the future) and stored with that fingerprint (a
    /// run the code refuses is not resumed), and returns the checkpoint with the new count as
    /// [`attempt`](Checkpoint::attempt): the resumed step's attempt number. The count is set
    /// by each [`save`](Store::save) (see [`Checkpoint::attempt`]) and to 0 by
    /// [`wait`](Store::wait).
    ///
    /// The default, for stores that do not count, is [`latest`](Store::latest): the resumed
    /// step gets the context's first attempt.
    fn load_to_resume(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint>, StoreError>> + Send {
        let _ = fingerprint;
        self.latest(run_id)
    }

    /// What the store knows of a run, its [`RunStatus`] included; `None` for a run it does not
    /// have. [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) asks before it
    /// continues a stored run, and refuses a paused or cancelled one.
    ///
    /// The default, for stores without run control, is `None` for every run.
    fn status(
        &self,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Option<RunInfo>, StoreError>> + Send {
        let _ = run_id;
        std::future::ready(Ok(None))
    }

    /// Marks a `Running` run [`RunStatus::Incompatible`] if its latest checkpoint's fingerprint
    /// is not `fingerprint`, the fingerprint of the code that just refused to resume it; any
    /// other run is left as it is. Called by
    /// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume).
    ///
    /// The default, for stores without run control, does nothing.
    fn mark_incompatible(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (run_id, fingerprint);
        std::future::ready(Ok(()))
    }

    /// Records that the run waits in step `step` for an event named `event` until `until`:
    /// the run is due then, or as soon as an event of that name is
    /// [sent](Store::send_event) to it (at once if one is in its inbox already). Events of
    /// other names neither wake it nor shorten the wait, and [`latest`](Store::latest) reads
    /// `until` back as the checkpoint's [`wake_at`](Checkpoint::wake_at) until the wait ends.
    /// The next checkpoint ends the wait. The step has not started: its attempt count goes
    /// back to 0.
    ///
    /// Written by an engine under a lease, the wait carries the lease's `fence` and is refused
    /// with [`StoreErrorKind::LeaseLost`] unless it is the run's current one (see
    /// [`RunQueue`](crate::store::RunQueue#leases-and-fencing)).
    ///
    /// The default, for stores without waits, refuses with [`StoreErrorKind::Unsupported`].
    fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
        fence: Option<Fence>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (run_id, step, event, until, fence);
        std::future::ready(Err(unsupported("event waits")))
    }

    /// Puts an event in a run's inbox, where it stays until a step that waits for an event of
    /// that name consumes it (with the checkpoint after that step), and makes a run waiting
    /// for an event of that name due now. A run waiting for another event, or asleep, keeps
    /// its time.
    ///
    /// A payload nested deeper than [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH) is
    /// refused with [`StoreErrorKind::Unstorable`]: the store acknowledges only what it can
    /// read back.
    ///
    /// The default, for stores without an inbox, refuses with
    /// [`StoreErrorKind::Unsupported`].
    fn send_event(
        &self,
        run_id: &RunId,
        name: &str,
        payload: serde_json::Value,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (run_id, name, payload);
        std::future::ready(Err(unsupported("an event inbox")))
    }

    /// The oldest event named `name` in a run's inbox, left there.
    ///
    /// The default, for stores without an inbox, is `None`.
    fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredEvent>, StoreError>> + Send {
        let _ = (run_id, name);
        std::future::ready(Ok(None))
    }

    /// Records a completed tool call in the run's call journal: the call's output, or its
    /// permanent failure. A run records each call as it completes, before the step goes on,
    /// so that the step, run again (after a crash, a failed later call, a restart), gets the
    /// result back from [`recorded_call`](Store::recorded_call) instead of calling the tool
    /// again.
    ///
    /// The first entry for a call (run, step, visit, position) is kept: recording the same
    /// call again changes nothing and is not an error. An entry may come before the run's
    /// first checkpoint. An output nested deeper than
    /// [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH) is refused with
    /// [`StoreErrorKind::Unstorable`]. What `Ok` acknowledged is durable as a checkpoint is.
    /// An entry with a [fence](JournalEntry::fence) that is not the run's current one (the
    /// run's lease has passed to another worker) is refused with
    /// [`StoreErrorKind::LeaseLost`] and changes nothing.
    ///
    /// The default, for stores without a journal, keeps nothing: a step run again makes all
    /// its calls again (with the same idempotency keys).
    fn record_call(
        &self,
        entry: JournalEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = entry;
        std::future::ready(Ok(()))
    }

    /// The journal's entry for call `position` of `visit` of `step` in run `run_id`, if it
    /// was [recorded](Store::record_call).
    ///
    /// The default, for stores without a journal, is `None`.
    fn recorded_call(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> impl Future<Output = Result<Option<JournalEntry>, StoreError>> + Send {
        let _ = (run_id, step, visit, position);
        std::future::ready(Ok(None))
    }

    /// Records a workflow (its name, fingerprint, steps and Mermaid graph) so that tools
    /// reading the store can draw its runs without its code (see
    /// [`RunHistory::workflows`](crate::store::RunHistory::workflows)). Recording a name and
    /// fingerprint the store has already is a no-op that keeps the first time it was
    /// recorded; a store should make it cheap (runs call it at every start and resume). A
    /// run's driver calls it before the run's first step, and an
    /// [`Engine`](crate::state::Engine) when it starts, for each workflow registered with it.
    ///
    /// The default, for stores without a catalogue of workflows, records nothing.
    fn register_workflow(
        &self,
        info: WorkflowInfo,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = info;
        std::future::ready(Ok(()))
    }

    /// Asks for a person's approval of an approval-gated call and parks the run on it: keeps
    /// `approval` (undecided) under its call's identity (run, step, visit, position) — the
    /// first request for a call is kept, and returned, so a step run again waits for the same
    /// request with the same deadline — and records the wait as [`wait`](Store::wait) does,
    /// for event [`APPROVAL_EVENT`](crate::store::APPROVAL_EVENT) until the request's
    /// deadline: the run is due then, or at once when the request is decided already.
    /// [`Store::status`] reads the pending request back as [`RunInfo::approval`].
    ///
    /// A run not in the store is refused with [`StoreErrorKind::UnknownRun`]; a request with
    /// a [fence](Approval::fence) that is not the run's current one with
    /// [`StoreErrorKind::LeaseLost`], changing nothing. The default, for stores without
    /// approvals, refuses with [`StoreErrorKind::Unsupported`].
    fn request_approval(
        &self,
        approval: Approval,
    ) -> impl Future<Output = Result<Approval, StoreError>> + Send {
        let _ = approval;
        std::future::ready(Err(unsupported("approvals")))
    }

    /// The approval request of call `position` of `visit` of `step` in run `run_id`, decided
    /// or not, if one was [asked for](Store::request_approval).
    ///
    /// The default, for stores without approvals, is `None`.
    fn approval(
        &self,
        run_id: &RunId,
        step: &str,
        visit: Visit,
        position: u32,
    ) -> impl Future<Output = Result<Option<Approval>, StoreError>> + Send {
        let _ = (run_id, step, visit, position);
        std::future::ready(Ok(None))
    }

    /// Every approval request of a run, in the order they were asked for.
    ///
    /// The default, for stores without approvals, is none.
    fn approvals(
        &self,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Vec<Approval>, StoreError>> + Send {
        let _ = run_id;
        std::future::ready(Ok(Vec::new()))
    }

    /// Decides the run's approval request whose [`call_id`](Approval::call_id) is `call_id`,
    /// atomically: only an undecided request is decided, once; a person's decision
    /// (approved, rejected) only before the request's deadline. A decided request makes its
    /// run due at once (the wait's deadline is kept). Returns the request as decided.
    ///
    /// Refusals change nothing (see [`decidable`](crate::store::decidable), which stores may
    /// use): [`ApprovalError::UnknownRun`], [`NotPending`](ApprovalError::NotPending) (no
    /// request of that id, none pending), [`OtherCall`](ApprovalError::OtherCall) (no request
    /// of that id, another pending), [`Decided`](ApprovalError::Decided) (decided already: a
    /// stale id), [`Expired`](ApprovalError::Expired) (a person's decision after the
    /// deadline), [`Store`](ApprovalError::Store) of kind [`StoreErrorKind::Unstorable`]
    /// (edited arguments nested deeper than [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH),
    /// which would not read back).
    ///
    /// The default, for stores without approvals, refuses with
    /// [`StoreErrorKind::Unsupported`].
    fn decide_approval(
        &self,
        run_id: &RunId,
        call_id: &str,
        decision: Decision,
    ) -> impl Future<Output = Result<Approval, ApprovalError>> + Send {
        let _ = (run_id, call_id, decision);
        std::future::ready(Err(ApprovalError::Store(unsupported("approvals"))))
    }
}

/// A checkpoint that starts run `run_id` was refused: the store has the run.
pub(crate) fn exists(run_id: &RunId) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Exists,
        format!("run `{run_id}` is stored already: a checkpoint that starts it changes nothing"),
    )
}

fn unsupported(what: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unsupported,
        format!("this store has no {what}; use a `SqliteStore` or a `MemoryStore`"),
    )
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`Store`], so a [`Ctx`](crate::state::Ctx) can hold any store.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn save_boxed(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), StoreError>>;
    fn load_to_resume_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>>;
    fn status_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunInfo>, StoreError>>;
    fn mark_incompatible_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn wait_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        event: &'a str,
        until: SystemTime,
        fence: Option<Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn next_event_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, StoreError>>;
    fn record_call_boxed(&self, entry: JournalEntry) -> BoxFuture<'_, Result<(), StoreError>>;
    fn recorded_call_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<JournalEntry>, StoreError>>;
    fn register_workflow_boxed(&self, info: WorkflowInfo) -> BoxFuture<'_, Result<(), StoreError>>;
    fn request_approval_boxed(
        &self,
        approval: Approval,
    ) -> BoxFuture<'_, Result<Approval, StoreError>>;
    fn approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<Approval>, StoreError>>;
    fn decide_approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        call_id: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<Approval, ApprovalError>>;
}

impl<S: Store> DynStore for S {
    fn save_boxed(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.save(checkpoint))
    }

    fn load_to_resume_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        Box::pin(self.load_to_resume(run_id, fingerprint))
    }

    fn status_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunInfo>, StoreError>> {
        Box::pin(self.status(run_id))
    }

    fn mark_incompatible_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.mark_incompatible(run_id, fingerprint))
    }

    fn wait_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        event: &'a str,
        until: SystemTime,
        fence: Option<Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.wait(run_id, step, event, until, fence))
    }

    fn next_event_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, StoreError>> {
        Box::pin(self.next_event(run_id, name))
    }

    fn record_call_boxed(&self, entry: JournalEntry) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.record_call(entry))
    }

    fn recorded_call_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<JournalEntry>, StoreError>> {
        Box::pin(self.recorded_call(run_id, step, visit, position))
    }

    fn register_workflow_boxed(&self, info: WorkflowInfo) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.register_workflow(info))
    }

    fn request_approval_boxed(
        &self,
        approval: Approval,
    ) -> BoxFuture<'_, Result<Approval, StoreError>> {
        Box::pin(self.request_approval(approval))
    }

    fn approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<Approval>, StoreError>> {
        Box::pin(self.approval(run_id, step, visit, position))
    }

    fn decide_approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        call_id: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<Approval, ApprovalError>> {
        Box::pin(self.decide_approval(run_id, call_id, decision))
    }
}

/// A journal entry whose output a store cannot read back.
pub(crate) fn unstorable_call(entry: &JournalEntry, reason: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unstorable,
        format!(
            "run `{}`: the result of call {} of step `{}` (tool `{}`) is refused: {reason}",
            entry.run_id, entry.position, entry.step, entry.tool
        ),
    )
}

/// An approval request whose arguments a store cannot read back.
pub(crate) fn unstorable_approval(approval: &Approval, reason: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unstorable,
        format!(
            "run `{}`: the approval request of call {} of step `{}` (tool `{}`) is refused: {reason}",
            approval.run_id, approval.position, approval.step, approval.tool
        ),
    )
}

pub(crate) fn unknown_run(run_id: &RunId) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::UnknownRun,
        format!("run `{run_id}` is not in the store: start it before sending it events"),
    )
}

pub(crate) fn unstorable(run_id: &RunId, step: &str, reason: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unstorable,
        format!(
            "run `{run_id}`: {} is refused: {reason}",
            checkpoint_of(step)
        ),
    )
}

/// A checkpoint in a message: "the checkpoint after step `x`", or "the run's start" for the
/// checkpoint that starts a run (its step is empty).
pub(crate) fn checkpoint_of(step: &str) -> String {
    if step.is_empty() {
        "the run's start".to_owned()
    } else {
        format!("the checkpoint after step `{step}`")
    }
}

pub(crate) fn unstorable_event(run_id: &RunId, name: &str, reason: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unstorable,
        format!("run `{run_id}`: event `{name}` is refused: {reason}"),
    )
}

/// A checkpoint of one workflow under the id of another workflow's run.
pub(crate) fn conflict(checkpoint: &Checkpoint, owner: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Conflict,
        format!(
            "run `{}` belongs to workflow `{owner}`, not `{}`: give each run its own id",
            checkpoint.run_id, checkpoint.workflow
        ),
    )
}

pub(crate) fn closed_inbox(run_id: &RunId, status: RunStatus) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Conflict,
        format!("run `{run_id}` is {status}: it takes no more events"),
    )
}
