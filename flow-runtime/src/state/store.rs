use crate::error::StoreError;
use crate::state::{CallRecord, RunId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

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
        }
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
            .finish_non_exhaustive()
    }
}

/// Where checkpoints go: the durable side of a run.
///
/// A run calls [`save`](Store::save) after every step and does not start the next step until
/// it returns `Ok`, so a store that has acknowledged a checkpoint holds a state the run can
/// resume from. Implement it for your own backend; [`MemoryStore`] keeps everything in memory.
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
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`Store`], so a [`Ctx`](crate::state::Ctx) can hold any store.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn save_boxed(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), StoreError>>;
    fn latest_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>>;
}

impl<S: Store> DynStore for S {
    fn save_boxed(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.save(checkpoint))
    }

    fn latest_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        Box::pin(self.latest(run_id))
    }
}

/// A [`Store`] in memory: keeps every checkpoint of every run, in order. For tests, and for
/// runs that need no durability.
#[derive(Default)]
pub struct MemoryStore {
    runs: Mutex<HashMap<RunId, Vec<Checkpoint>>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = self.runs.lock().map(|r| r.len()).unwrap_or_default();
        f.debug_struct("MemoryStore").field("runs", &runs).finish()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every checkpoint of a run, oldest first.
    #[must_use]
    pub fn history(&self, run_id: &RunId) -> Vec<Checkpoint> {
        self.lock().get(run_id).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Vec<Checkpoint>>> {
        // A panic while holding the lock cannot leave the map half-updated (every update is a
        // single push), so a poisoned lock is still consistent.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    async fn save(&self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.lock()
            .entry(checkpoint.run_id.clone())
            .or_default()
            .push(checkpoint);
        Ok(())
    }

    async fn latest(&self, run_id: &RunId) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.lock().get(run_id).and_then(|h| h.last().cloned()))
    }
}
