use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::control::refused;
use crate::state::{CallRecord, RunControl, RunFilter, RunId, RunInfo, RunStatus};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
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
    /// [`Store::wait`], cleared by the next checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Written only: the event the step consumed ([`StoredEvent::id`]), removed from the
    /// run's inbox with this checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_event: Option<u64>,
    /// Which attempt of the run's next step has started. Written: 1 when the run goes straight
    /// on into its next step after this checkpoint (that step counts as started once the
    /// checkpoint is committed), 0 when the run parks or has finished. Read back by
    /// [`Store::load_to_resume`]: the attempt number the resumed step gets, this resume
    /// counted, so that a step interrupted by a crash runs again as attempt 2.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
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
            .finish_non_exhaustive()
    }
}

/// Where checkpoints go: the durable side of a run.
///
/// A run calls [`save`](Store::save) after every step and does not start the next step until
/// it returns `Ok`, so a store that has acknowledged a checkpoint holds a state the run can
/// resume from. Implement it for your own backend; [`MemoryStore`] keeps everything in memory.
///
/// What a store acknowledges, it must be able to read back: the runtime refuses states and
/// events that would not round-trip through JSON before they reach the store (NaN and
/// infinite numbers; nesting deeper than [`MAX_JSON_DEPTH`](crate::state::MAX_JSON_DEPTH)),
/// and a store's reader must accept every value nested that deep.
///
/// [`save`](Store::save) and [`latest`](Store::latest) are all a store needs. A store that
/// also offers run control ([`RunControl`]: pause, unpause, cancel) overrides
/// [`status`](Store::status) and [`mark_incompatible`](Store::mark_incompatible) too: they are
/// what runs ask their store to honour it.
///
/// ```
/// use flow_runtime::state::{Checkpoint, Store, RunId};
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
    /// Stores `checkpoint` as the latest state of its run.
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
    /// The default, for stores without waits, refuses with [`StoreErrorKind::Unsupported`].
    fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (run_id, step, event, until);
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
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn next_event_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, StoreError>>;
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
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.wait(run_id, step, event, until))
    }

    fn next_event_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, StoreError>> {
        Box::pin(self.next_event(run_id, name))
    }
}

/// A [`Store`] in memory: keeps every checkpoint of every run, in order. For tests, and for
/// runs that need no durability. It offers [`RunControl`] like
/// `SqliteStore` (feature `sqlite`) does.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    engine: crate::state::engine::InProcessLock,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<RunId, MemoryRun>,
    next_event: u64,
}

struct MemoryRun {
    checkpoints: Vec<Checkpoint>,
    status: RunStatus,
    created_at: SystemTime,
    updated_at: SystemTime,
    /// When the run is due: a sleep's end, a wait's deadline, or the epoch once the event
    /// it waits for has arrived.
    wake_at: Option<SystemTime>,
    waiting: Option<String>,
    /// The event the waiting step waits for, and until when.
    wait_event: Option<(String, SystemTime)>,
    inbox: Vec<StoredEvent>,
    /// See [`Checkpoint::attempt`].
    attempt: u32,
    /// The message of the failure that set the run aside, until its next checkpoint.
    failure: Option<String>,
}

impl MemoryRun {
    /// `None` before the first checkpoint, which a stored run always has.
    fn info(&self) -> Option<RunInfo> {
        let latest = self.checkpoints.last()?;
        Some(
            RunInfo::new(
                latest.run_id.clone(),
                latest.workflow.clone(),
                latest.fingerprint.clone(),
                self.status,
                latest.step.clone(),
                u64::try_from(self.checkpoints.len()).unwrap_or(u64::MAX),
                self.created_at,
                self.updated_at,
            )
            .with_failure(self.failure.clone()),
        )
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = self.inner.lock().map(|r| r.runs.len()).unwrap_or_default();
        f.debug_struct("MemoryStore")
            .field("runs", &runs)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every checkpoint of a run, oldest first, with the tool calls and output deliveries of
    /// each step: the run's history.
    #[must_use]
    pub fn history(&self, run_id: &RunId) -> Vec<Checkpoint> {
        self.lock()
            .runs
            .get(run_id)
            .map(|run| run.checkpoints.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing that can panic runs while the lock is held after an update has begun (each
        // is a push and plain assignments), so a poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves a run to `to`, as [`RunStatus::transition`] allows.
    fn control(&self, run_id: &RunId, to: RunStatus) -> Result<RunInfo, ControlError> {
        let mut inner = self.lock();
        let runs = &mut inner.runs;
        let unknown = || ControlError::UnknownRun {
            run_id: run_id.clone(),
        };
        let run = runs.get_mut(run_id).ok_or_else(unknown)?;
        let status = run.status;
        let next = status
            .transition(to)
            .ok_or_else(|| ControlError::Transition {
                run_id: run_id.clone(),
                status,
                to,
            })?;
        if next != status {
            run.status = next;
            run.updated_at = SystemTime::now();
        }
        run.info().ok_or_else(unknown)
    }
}

impl Store for MemoryStore {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        if let Some(reason) = crate::state::too_deep(&checkpoint.state) {
            return Err(unstorable(&checkpoint.run_id, &checkpoint.step, &reason));
        }
        let mut inner = self.lock();
        let now = SystemTime::now();
        let run = inner
            .runs
            .entry(checkpoint.run_id.clone())
            .or_insert_with(|| MemoryRun {
                checkpoints: Vec::new(),
                status: RunStatus::Running,
                created_at: now,
                updated_at: now,
                wake_at: None,
                waiting: None,
                wait_event: None,
                inbox: Vec::new(),
                attempt: 0,
                failure: None,
            });
        if run.status.is_stopped() {
            return Err(refused(&checkpoint.run_id, &checkpoint.step, run.status));
        }
        run.status = if checkpoint.finished {
            RunStatus::Finished
        } else {
            RunStatus::Running
        };
        run.updated_at = now;
        run.wake_at = checkpoint.wake_at;
        run.waiting = None;
        run.wait_event = None;
        run.attempt = checkpoint.attempt;
        run.failure = None;
        if let Some(id) = checkpoint.consumed_event {
            run.inbox.retain(|e| e.id != id);
        }
        run.checkpoints.push(checkpoint);
        Ok(())
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.lock().runs.get(run_id).and_then(|run| {
            let latest = run.checkpoints.last()?.clone();
            Some(
                latest
                    .with_wake_at(run.wait_event.as_ref().map_or(run.wake_at, |w| Some(w.1)))
                    .with_waiting(run.waiting.clone())
                    .with_consumed_event(None)
                    .with_attempt(run.attempt),
            )
        }))
    }

    async fn load_to_resume(
        &self,
        run_id: &RunId,
        fingerprint: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        {
            let mut inner = self.lock();
            if let Some(run) = inner.runs.get_mut(run_id)
                && run
                    .checkpoints
                    .last()
                    .is_some_and(|c| !c.finished && c.fingerprint == fingerprint)
                && run.wake_at.is_none_or(|t| t <= crate::state::now())
            {
                run.attempt = run.attempt.saturating_add(1);
            }
        }
        self.latest(run_id).await
    }

    async fn status(&self, run_id: &RunId) -> Result<Option<RunInfo>, StoreError> {
        Ok(self.lock().runs.get(run_id).and_then(MemoryRun::info))
    }

    async fn mark_incompatible(&self, run_id: &RunId, fingerprint: &str) -> Result<(), StoreError> {
        if let Some(run) = self.lock().runs.get_mut(run_id)
            && run.status == RunStatus::Running
            && run
                .checkpoints
                .last()
                .is_some_and(|c| c.fingerprint != fingerprint)
        {
            run.status = RunStatus::Incompatible;
            run.updated_at = SystemTime::now();
        }
        Ok(())
    }

    async fn wait(
        &self,
        run_id: &RunId,
        step: &str,
        event: &str,
        until: SystemTime,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let run = inner
            .runs
            .get_mut(run_id)
            .ok_or_else(|| unknown_run(run_id))?;
        // An event sent after the step looked in the inbox, and before this, wakes it too.
        let arrived = run.inbox.iter().any(|e| e.name == event);
        run.wake_at = Some(if arrived {
            SystemTime::UNIX_EPOCH
        } else {
            until
        });
        run.waiting = Some(step.to_owned());
        run.wait_event = Some((event.to_owned(), until));
        run.attempt = 0;
        Ok(())
    }

    async fn send_event(
        &self,
        run_id: &RunId,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let Some(reason) = crate::state::too_deep(&payload) {
            return Err(unstorable_event(run_id, name, &reason));
        }
        let mut inner = self.lock();
        inner.next_event += 1;
        let id = inner.next_event;
        let run = inner
            .runs
            .get_mut(run_id)
            .ok_or_else(|| unknown_run(run_id))?;
        if matches!(run.status, RunStatus::Finished | RunStatus::Cancelled) {
            return Err(closed_inbox(run_id, run.status));
        }
        run.inbox.push(StoredEvent::new(id, name, payload));
        // Only the event the run waits for makes it due; the wait's deadline is kept.
        if run.waiting.is_some() && run.wait_event.as_ref().is_some_and(|w| w.0 == name) {
            run.wake_at = Some(SystemTime::UNIX_EPOCH);
        }
        Ok(())
    }

    async fn next_event(
        &self,
        run_id: &RunId,
        name: &str,
    ) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(run_id)
            .and_then(|run| run.inbox.iter().find(|e| e.name == name).cloned()))
    }
}

impl crate::state::RunQueue for MemoryStore {
    async fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> Result<Vec<RunId>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<(Option<SystemTime>, SystemTime, RunId)> = inner
            .runs
            .iter()
            .filter(|(_, run)| {
                run.status == RunStatus::Running
                    && run.wake_at.is_none_or(|t| t <= now)
                    && run
                        .checkpoints
                        .last()
                        .is_some_and(|c| workflows.contains(&c.workflow.as_str()))
            })
            .map(|(id, run)| (run.wake_at, run.updated_at, id.clone()))
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, _, id)| id).collect())
    }

    async fn next_wake(&self, after: SystemTime) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|run| run.status == RunStatus::Running)
            .filter_map(|run| run.wake_at)
            .filter(|t| *t > after)
            .min())
    }

    async fn fail(&self, run_id: &RunId, message: &str) -> Result<(), StoreError> {
        tracing::warn!(run_id = %run_id, error = message, "run failed");
        if let Some(run) = self.lock().runs.get_mut(run_id)
            && run.status == RunStatus::Running
        {
            run.status = RunStatus::Failed;
            run.updated_at = SystemTime::now();
            run.failure = Some(message.to_owned());
        }
        Ok(())
    }

    fn lock_engine(&self) -> Result<crate::state::EngineLock, crate::state::EngineError> {
        self.engine.lock("this `MemoryStore`")
    }
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
        format!("run `{run_id}`: the checkpoint after step `{step}` is refused: {reason}"),
    )
}

pub(crate) fn unstorable_event(run_id: &RunId, name: &str, reason: &str) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Unstorable,
        format!("run `{run_id}`: event `{name}` is refused: {reason}"),
    )
}

pub(crate) fn closed_inbox(run_id: &RunId, status: RunStatus) -> StoreError {
    StoreError::of_kind(
        StoreErrorKind::Conflict,
        format!("run `{run_id}` is {status}: it takes no more events"),
    )
}

impl RunControl for MemoryStore {
    async fn list(&self, filter: &RunFilter) -> Result<Vec<RunInfo>, StoreError> {
        let mut runs: Vec<RunInfo> = self
            .lock()
            .runs
            .values()
            .filter_map(MemoryRun::info)
            .filter(|info| filter.matches(info))
            .collect();
        runs.sort_by_key(|info| (Reverse(info.updated_at), info.run_id.clone()));
        if let Some(limit) = filter.limit {
            runs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(runs)
    }

    async fn pause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Paused)
    }

    async fn unpause(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Running)
    }

    async fn cancel(&self, run_id: &RunId) -> Result<RunInfo, ControlError> {
        self.control(run_id, RunStatus::Cancelled)
    }
}
