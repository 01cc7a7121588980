//! The [`RunHistory`] trait: what tools that look at runs (the `flow` CLI, a run viewer) read
//! from a store without the workflows' code — the workflows' graphs, a run's steps and
//! calls — and the pruning of finished runs.

use crate::error::StoreError;
use crate::state::{CallRecord, RunId, Workflow};
use crate::store::{Failure, JournalEntry, RunControl};
use std::future::Future;
use std::time::{Duration, SystemTime};

/// A workflow as a store keeps it, so that tools reading the store can draw any run without
/// the workflow's code: its name, the fingerprint of the code, its steps and its graph.
///
/// Recorded by [`Store::register_workflow`](crate::store::Store::register_workflow) when an
/// [`Engine`](crate::state::Engine) starts with the workflow registered and when a run of
/// it starts or resumes on a store; read back by [`RunHistory::workflows`]. A workflow whose
/// code changed is kept once per fingerprint, so a run stored by older code is drawn with the
/// graph of that code.
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::store::WorkflowInfo;
///
/// #[workflow]
/// pub mod greet {
///     #[step(entry)]
///     pub async fn clean(name: String) -> Result<String, std::io::Error> {
///         Ok(name.trim().to_owned())
///     }
///
///     #[step(after = clean, exit)]
///     pub async fn hello(name: String) -> Result<String, std::io::Error> {
///         Ok(format!("hello, {name}"))
///     }
/// }
///
/// let info = WorkflowInfo::of::<greet::Workflow>();
/// assert_eq!((info.name.as_str(), info.steps.as_slice()), ("greet", ["clean", "hello"].map(String::from).as_slice()));
/// assert!(info.mermaid.starts_with("flowchart"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WorkflowInfo {
    /// The workflow's name ([`Workflow::NAME`]).
    pub name: String,
    /// The fingerprint of its code ([`Workflow::FINGERPRINT`]).
    pub fingerprint: String,
    /// Its steps, in declaration order ([`Workflow::STEPS`]).
    pub steps: Vec<String>,
    /// Its graph as a Mermaid `flowchart` ([`Workflow::MERMAID`]).
    pub mermaid: String,
    /// When the store first recorded this fingerprint of the workflow. Set by the store:
    /// ignored by [`register_workflow`](crate::store::Store::register_workflow).
    pub registered_at: SystemTime,
}

impl WorkflowInfo {
    /// A workflow's info, for stores that read one back.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        fingerprint: impl Into<String>,
        steps: Vec<String>,
        mermaid: impl Into<String>,
        registered_at: SystemTime,
    ) -> Self {
        Self {
            name: name.into(),
            fingerprint: fingerprint.into(),
            steps,
            mermaid: mermaid.into(),
            registered_at,
        }
    }

    /// The info of workflow `W`, from the constants `#[workflow]` generates
    /// (`registered_at` is now).
    #[must_use]
    pub fn of<W: Workflow>() -> Self {
        Self::new(
            W::NAME,
            W::FINGERPRINT,
            W::STEPS.iter().map(|s| (*s).to_owned()).collect(),
            W::MERMAID,
            SystemTime::now(),
        )
    }
}

/// One checkpoint of a run's history, without its state: the step that had just completed,
/// when, on which attempt, and the calls it made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The checkpoint's number in its run, from 1.
    pub seq: u64,
    /// The step (or fan-out branch) that had just completed; empty for the start checkpoint
    /// an [`Engine`](crate::state::Engine) stores before a run's first step.
    pub step: String,
    /// Whether the run finished with this checkpoint.
    pub finished: bool,
    /// When the checkpoint was saved.
    pub at: SystemTime,
    /// Which attempt of the step completed: 1 unless the step was run again (after a crash,
    /// a failure that was retried, a refused checkpoint). 0 when not known (checkpoints a
    /// store kept before it counted them).
    pub attempt: u32,
    /// When the attempt that completed began: the previous checkpoint when the run went
    /// straight on into the step, the resume that counted the attempt otherwise (so a sleep
    /// or an event wait before the step is not part of it). `None` when not known: the run's
    /// first checkpoint, and checkpoints a store kept before it recorded this.
    pub started_at: Option<SystemTime>,
    /// The tool calls and output deliveries of the step, in the order they ended, each with
    /// the visit it was made on (a loop's turn, a `workers` item).
    pub calls: Vec<CallRecord>,
    /// When the step after this checkpoint failed and set the run aside: which step and
    /// why. Kept when the run is retried (unpaused) and goes on.
    pub failure: Option<Failure>,
}

impl HistoryEntry {
    /// A history entry, for stores that read one back.
    #[must_use]
    pub fn new(seq: u64, step: impl Into<String>, finished: bool, at: SystemTime) -> Self {
        Self {
            seq,
            step: step.into(),
            finished,
            at,
            attempt: 0,
            started_at: None,
            calls: Vec::new(),
            failure: None,
        }
    }

    /// The entry with the attempt that completed its step and when that attempt began.
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32, started_at: Option<SystemTime>) -> Self {
        self.attempt = attempt;
        self.started_at = started_at;
        self
    }

    /// The entry with its step's calls.
    #[must_use]
    pub fn with_calls(mut self, calls: Vec<CallRecord>) -> Self {
        self.calls = calls;
        self
    }

    /// The entry with the failure of the step after it.
    #[must_use]
    pub fn with_failure(mut self, failure: Option<Failure>) -> Self {
        self.failure = failure;
        self
    }

    /// How long the attempt that completed the step took, when known.
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        self.started_at
            .map(|start| self.at.duration_since(start).unwrap_or_default())
    }
}

/// Which finished runs [`RunHistory::prune`] deletes; cancelled runs count as finished.
/// Other runs are never deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prune {
    /// Finished runs that last changed longer ago than this.
    OlderThan(Duration),
    /// All finished runs but this many, the most recently finished.
    KeepLast(u64),
}

/// What tools that look at runs read from a store, beside [`RunControl`]'s list and
/// controls: the workflows' graphs, each run's history and call journal; and the pruning of
/// finished runs. Implemented by `SqliteStore` (feature `sqlite`) and
/// [`MemoryStore`](crate::store::MemoryStore); the `flow` CLI works with any store that
/// implements it. A run's status, failure and pending wait (event and deadline) are
/// [`Store::status`](crate::store::Store::status)'s [`RunInfo`](crate::store::RunInfo).
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::store::{RunHistory, Prune};
/// use std::sync::Arc;
///
/// #[workflow]
/// pub mod count {
///     #[step(entry)]
///     pub async fn one(n: u32) -> Result<u32, std::io::Error> {
///         Ok(n + 1)
///     }
///
///     #[step(after = one, exit)]
///     pub async fn two(n: u32) -> Result<u32, std::io::Error> {
///         Ok(n + 1)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(MemoryStore::new());
/// let ctx = Ctx::builder(()).run_id("c1").store(Arc::clone(&store)).build();
/// assert_eq!(count::Workflow::run(&ctx, 0).await?, 2);
///
/// // The workflow's graph is in the store, and so is the run's history.
/// let workflows = store.workflows().await?;
/// assert_eq!(workflows[0].name, "count");
/// let steps = store.steps(&"c1".into()).await?;
/// // The run's start (`""`, stored by `run` before its first step), then each step.
/// assert_eq!(steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(), ["", "one", "two"]);
/// assert_eq!(steps[1].attempt, 1);
///
/// // Finished runs go, in batches of at most 100.
/// assert_eq!(store.prune(Prune::KeepLast(0), 100).await?, 1);
/// assert!(store.steps(&"c1".into()).await?.is_empty());
/// # Ok(())
/// # }
/// ```
pub trait RunHistory: RunControl {
    /// Every workflow the store has recorded (see
    /// [`Store::register_workflow`](crate::store::Store::register_workflow)), once per name
    /// and fingerprint: the most recently recorded first.
    fn workflows(&self) -> impl Future<Output = Result<Vec<WorkflowInfo>, StoreError>> + Send;

    /// A run's history: every checkpoint it stored, oldest first, without states, each with
    /// its step, time, attempt, calls and the failure of the step after it. Empty for an
    /// unknown run.
    ///
    /// A step whose checkpoint was not stored (the process died, the step failed, run control
    /// stopped the run) is not in it; when it runs again, its new checkpoint is.
    fn steps(
        &self,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;

    /// A run's call journal (see [`Store::record_call`](crate::store::Store::record_call)):
    /// every completed tool and model call with its result, in the order they were
    /// recorded. It also holds the calls of a step whose checkpoint is not stored yet (a
    /// step that failed, or is running). Empty for an unknown run.
    fn calls(
        &self,
        run_id: &RunId,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;

    /// Deletes at most `batch` of the finished and cancelled runs `policy` selects, the least
    /// recently updated first, with their history, events and journal, and returns how many
    /// it deleted: called until it returns 0, it deletes them all, each batch in a
    /// transaction of its own so that runs go on meanwhile. Other runs are kept whatever
    /// their age.
    fn prune(
        &self,
        policy: Prune,
        batch: u64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
