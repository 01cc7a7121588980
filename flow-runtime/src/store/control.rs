//! Run control: the status of stored runs, listing them, and pausing, unpausing and cancelling
//! them, for an engine, a CLI or an operator.

use crate::error::{ControlError, StoreError, StoreErrorKind};
use crate::state::RunId;
use crate::store::Store;
use std::fmt;
use std::future::Future;
use std::time::SystemTime;

/// Where a stored run stands.
///
/// A run gets a status with its first checkpoint. Checkpoints move it between
/// [`Running`](Self::Running) and [`Finished`](Self::Finished); the operations of
/// [`RunControl`] move it to and from [`Paused`](Self::Paused) and
/// [`Cancelled`](Self::Cancelled); [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume)
/// marks it [`Incompatible`](Self::Incompatible).
///
/// | status \ call  | `pause`  | `unpause` | `cancel`    |
/// |----------------|----------|-----------|-------------|
/// | `Running`      | `Paused` | unchanged | `Cancelled` |
/// | `Paused`       | unchanged | `Running` | `Cancelled` |
/// | `Incompatible` | `Paused` | refused   | `Cancelled` |
/// | `Failed`       | refused  | `Running` | `Cancelled` |
/// | `Corrupt`      | refused  | refused   | `Cancelled` |
/// | `Cancelled`    | refused  | refused   | unchanged   |
/// | `Finished`     | refused  | refused   | refused     |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Not finished, and nothing stops it: a process may be running it now, or it may be
    /// waiting to be resumed (its process died, or a step failed). Its next checkpoint is
    /// stored.
    Running,
    /// Paused by [`RunControl::pause`]: its next checkpoint is refused, so it stops before its
    /// next step, until [`RunControl::unpause`].
    Paused,
    /// Cancelled by [`RunControl::cancel`], for good: its next checkpoint is refused, so it
    /// stops before its next step, and it cannot be resumed.
    Cancelled,
    /// Its latest checkpoint is the finished one.
    Finished,
    /// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) found it stored with
    /// another fingerprint than the code asked to resume it (the graph or a step signature
    /// changed) and refused it. The run is otherwise as it was: code with the stored
    /// fingerprint may still resume it, and its next checkpoint makes it `Running` again.
    Incompatible,
    /// A step failed while an [`Engine`](crate::state::Engine) ran it; the run keeps its last
    /// checkpoint, and the engine leaves it alone until it is unpaused (retried) or cancelled.
    /// [`RunInfo::failure`] holds the failure's message.
    Failed,
    /// The store's record of the run has a status this version cannot read (written by hand,
    /// or by a newer version); [`RunInfo::corrupt`] says what it is. Only this run is
    /// affected: listing the others, and running them, goes on. The run is never resumed;
    /// [`RunControl::cancel`] sets it aside for good (and repairs its status), or fix the
    /// record and resume it.
    Corrupt,
}

impl RunStatus {
    /// The status in lower case, as stores keep it and messages show it: `"running"`,
    /// `"paused"`, `"cancelled"`, `"finished"`, `"incompatible"`, `"failed"`, `"corrupt"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Finished => "finished",
            Self::Incompatible => "incompatible",
            Self::Failed => "failed",
            Self::Corrupt => "corrupt",
        }
    }

    /// The status named by [`as_str`](Self::as_str), for stores that read one back.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Paused,
            Self::Cancelled,
            Self::Finished,
            Self::Incompatible,
            Self::Failed,
            Self::Corrupt,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether run control has stopped the run: a checkpoint of it is refused, and
    /// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) does not resume it.
    #[must_use]
    pub fn is_stopped(self) -> bool {
        matches!(
            self,
            Self::Paused | Self::Cancelled | Self::Failed | Self::Corrupt
        )
    }

    /// The status a run in this one gets from `to`'s operation (`Paused` from
    /// [`pause`](RunControl::pause), `Running` from [`unpause`](RunControl::unpause),
    /// `Cancelled` from [`cancel`](RunControl::cancel)), or `None` when the table on
    /// [`RunStatus`] refuses it. For stores that implement [`RunControl`].
    #[must_use]
    pub fn transition(self, to: RunStatus) -> Option<RunStatus> {
        match (self, to) {
            (Self::Running | Self::Paused | Self::Incompatible, Self::Paused | Self::Cancelled)
            | (Self::Cancelled | Self::Failed | Self::Corrupt, Self::Cancelled)
            | (Self::Running | Self::Paused | Self::Failed, Self::Running) => Some(to),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run failed: the step that failed, and the failure's message chain. Stored with the
/// run by [`RunQueue::fail`](crate::store::RunQueue::fail), read back as [`RunInfo::failure`]
/// and [`RunState::Failed`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// The step that failed (the step whose checkpoint could not be stored, for a store
    /// failure), or `None` when the run failed outside any step: its stored state could not be
    /// read, or the engine panicked around it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The error and its sources, one line (`error: source: source…`), with the secrets the
    /// run's tools sent taken out.
    pub reason: String,
}

impl Failure {
    /// A failure of `step` (`None`: outside any step) for `reason`.
    #[must_use]
    pub fn new(step: Option<String>, reason: impl Into<String>) -> Self {
        Self {
            step,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Some(step) => write!(f, "step `{step}` failed: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Where a run stands, with what each state knows: [`RunInfo::state`] tells it.
///
/// [`RunStatus`] is what stores keep and filter on; this is the same status told in full: a
/// `Running` run is `Sleeping` or `Waiting` when it is parked, a `Failed` one says which step
/// failed and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
#[non_exhaustive]
pub enum RunState {
    /// Not finished and not parked: a process may be running it now, or it is due to be
    /// resumed (its process died, or a timer or event made it due).
    Running,
    /// A step returned [`Sleep`](crate::state::Sleep): the run is due again at `until`.
    Sleeping {
        /// When the run is due.
        until: SystemTime,
    },
    /// A step waits for `event`; at `until` it gets
    /// [`Event::TimedOut`](crate::state::Event::TimedOut) instead.
    Waiting {
        /// The event's name.
        event: String,
        /// The wait's deadline.
        until: SystemTime,
    },
    /// A step waits for a person's approval of call `call_id` of tool `tool` with
    /// `arguments`; at `until` the call times out. See [`RunInfo::approval`].
    AwaitingApproval {
        /// The call's id, to approve or reject it by.
        call_id: String,
        /// The tool.
        tool: String,
        /// The arguments the call was asked with.
        arguments: serde_json::Value,
        /// When the request times out.
        until: SystemTime,
    },
    /// Paused by [`RunControl::pause`].
    Paused,
    /// Cancelled by [`RunControl::cancel`], for good.
    Cancelled,
    /// Its latest checkpoint is the finished one: the output is there.
    Finished,
    /// A step failed; [`RunControl::unpause`] retries it, [`RunControl::cancel`] gives up.
    Failed {
        /// The step that failed, or `None` when the run failed outside any step.
        step: Option<String>,
        /// The failure's message chain.
        reason: String,
    },
    /// Stored by code with another fingerprint; see [`RunStatus::Incompatible`].
    Incompatible,
    /// Part of the store's record cannot be read; see [`RunStatus::Corrupt`].
    Corrupt {
        /// What cannot be read.
        what: String,
    },
}

impl RunState {
    /// Whether the run has ended for good: finished or cancelled. A failed run has not: it
    /// may be retried.
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled)
    }
}

/// What a store knows of one run: [`Store::status`] and [`RunControl::list`] return it. The
/// states themselves are left out; [`Store::latest`] reads the latest one.
///
/// [`state`](Self::state) tells where the run stands in full (sleeping until when, waiting
/// for which event, failed in which step and why); [`status`](Self::status) is the short
/// form that [`RunFilter`] selects on.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run.
    pub run_id: RunId,
    /// The workflow it belongs to.
    pub workflow: String,
    /// The fingerprint of the code that stored its latest checkpoint.
    pub fingerprint: String,
    /// Where it stands.
    pub status: RunStatus,
    /// The step (or fan-out branch) of its latest checkpoint: the last one completed and stored.
    pub step: String,
    /// How many checkpoints it has stored.
    pub checkpoints: u64,
    /// When its first checkpoint was stored.
    pub created_at: SystemTime,
    /// When it last changed: its latest checkpoint, or a change of status.
    pub updated_at: SystemTime,
    /// For a [`Failed`](RunStatus::Failed) run: the step that failed and why (the step's
    /// error, a panic's message…). Kept until the run's next checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// For a sleeping run: when it is due again. Left out while it waits for an event (see
    /// [`wait`](Self::wait)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<SystemTime>,
    /// For a run waiting for an event: the event's name and the wait's deadline. Kept after
    /// the event arrived, until the run's next checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<(String, SystemTime)>,
    /// What in the store's record of the run cannot be read, if anything: its status (then
    /// `status` is [`Corrupt`](RunStatus::Corrupt)) or another column (then the field is left
    /// empty, 0, or at the Unix epoch). Only this run is affected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
    /// For a run waiting for a person's approval: the pending request (tool, call id,
    /// arguments, deadline). See [`Store::request_approval`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::store::Approval>,
}

impl RunInfo {
    /// A run's info, for stores that read one back.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // one per field; stores fill them from one row
    pub fn new(
        run_id: RunId,
        workflow: impl Into<String>,
        fingerprint: impl Into<String>,
        status: RunStatus,
        step: impl Into<String>,
        checkpoints: u64,
        created_at: SystemTime,
        updated_at: SystemTime,
    ) -> Self {
        Self {
            run_id,
            workflow: workflow.into(),
            fingerprint: fingerprint.into(),
            status,
            step: step.into(),
            checkpoints,
            created_at,
            updated_at,
            failure: None,
            wake_at: None,
            wait: None,
            corrupt: None,
            approval: None,
        }
    }

    /// The info with the run's pending approval request, if any.
    #[must_use]
    pub fn with_approval(mut self, approval: Option<crate::store::Approval>) -> Self {
        self.approval = approval.filter(crate::store::Approval::is_pending);
        self
    }

    /// The info with the failure that set the run aside.
    #[must_use]
    pub fn with_failure(mut self, failure: Option<Failure>) -> Self {
        self.failure = failure;
        self
    }

    /// The info with when the run is due (`wake_at`: a sleep's end) and the event it waits
    /// for with the wait's deadline. A wait wins over `wake_at`, which stores may use for the
    /// wait's own schedule.
    #[must_use]
    pub fn with_schedule(
        mut self,
        wake_at: Option<SystemTime>,
        wait: Option<(String, SystemTime)>,
    ) -> Self {
        self.wake_at = if wait.is_some() { None } else { wake_at };
        self.wait = wait;
        self
    }

    /// The info of a run part of whose record cannot be read, with what is wrong.
    #[must_use]
    pub fn corrupted(mut self, what: impl Into<String>) -> Self {
        self.corrupt = Some(what.into());
        self
    }

    /// For stores' `list` and `status`: the info with its run's pending approval request as
    /// read, or, when that request cannot be read ([`StoreErrorKind::Corrupt`]), with what is
    /// wrong added to [`corrupt`](Self::corrupt): one bad approval marks its run, never fails
    /// the list or hides the run. Any other error is returned.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn with_listed_approval(
        self,
        approval: Result<Option<crate::store::Approval>, StoreError>,
    ) -> Result<Self, StoreError> {
        match approval {
            Ok(approval) => Ok(self.with_approval(approval)),
            Err(e) if e.kind() == StoreErrorKind::Corrupt => {
                let what = match &self.corrupt {
                    Some(before) => format!("{before}; {e}"),
                    None => e.to_string(),
                };
                Ok(self.corrupted(what))
            }
            Err(e) => Err(e),
        }
    }

    /// Where the run stands, in full: a `Running` run that sleeps or waits for an event says
    /// until when (and for which event); a failed one says which step failed and why.
    #[must_use]
    pub fn state(&self) -> RunState {
        match self.status {
            RunStatus::Running => match (&self.wait, self.wake_at, &self.approval) {
                (Some(_), _, Some(approval)) => RunState::AwaitingApproval {
                    call_id: approval.call_id.clone(),
                    tool: approval.tool.clone(),
                    arguments: approval.arguments.clone(),
                    until: approval.until,
                },
                (Some((event, until)), _, None) => RunState::Waiting {
                    event: event.clone(),
                    until: *until,
                },
                (None, Some(until), _) => RunState::Sleeping { until },
                (None, None, _) => RunState::Running,
            },
            RunStatus::Paused => RunState::Paused,
            RunStatus::Cancelled => RunState::Cancelled,
            RunStatus::Finished => RunState::Finished,
            RunStatus::Incompatible => RunState::Incompatible,
            RunStatus::Failed => {
                let failure = self.failure.clone().unwrap_or_default();
                RunState::Failed {
                    step: failure.step,
                    reason: failure.reason,
                }
            }
            RunStatus::Corrupt => RunState::Corrupt {
                what: self.corrupt.clone().unwrap_or_default(),
            },
        }
    }
}

/// Which runs [`RunControl::list`] returns: all of them unless narrowed.
///
/// ```
/// use flow_runtime::store::{RunFilter, RunStatus};
///
/// let paused_orders = RunFilter::new().workflow("order").status(RunStatus::Paused).limit(20);
/// assert_eq!(paused_orders.workflow.as_deref(), Some("order"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs of this workflow.
    pub workflow: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs updated (a checkpoint, a change of status) at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many runs.
    pub limit: Option<u64>,
}

impl RunFilter {
    /// Every run.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only runs of `workflow` (its module's name, [`Workflow::NAME`](crate::state::Workflow::NAME)).
    #[must_use]
    pub fn workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    /// Only runs in `status`.
    #[must_use]
    pub fn status(mut self, status: RunStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only runs updated at or after `since` (see [`RunInfo::updated_at`]).
    #[must_use]
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// At most `limit` runs, the most recently updated.
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Whether `info` passes the filter's workflow, status and time (not its limit).
    #[must_use]
    pub fn matches(&self, info: &RunInfo) -> bool {
        self.workflow.as_ref().is_none_or(|w| *w == info.workflow)
            && self.status.is_none_or(|s| s == info.status)
            && self.since.is_none_or(|t| info.updated_at >= t)
    }
}

/// Control over a store's runs: list them, pause, unpause and cancel them. Implemented by
/// `SqliteStore` (feature `sqlite`) and [`MemoryStore`](crate::store::MemoryStore);
/// an engine or a CLI works with any store that implements it. A run's status is read with
/// [`Store::status`].
///
/// Runs honour control at their checkpoints: the store refuses the checkpoint of a paused or
/// cancelled run, and the run stops with
/// [`RuntimeError::Stopped`](crate::error::RuntimeError::Stopped) **before its next step**. A
/// step that is running when the run is paused or cancelled is not interrupted; it finishes,
/// but its checkpoint is not stored, so when a paused run is unpaused and resumed that step
/// runs again (at-least-once, as after a crash). The steps stored before it never run again.
/// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) refuses a paused or
/// cancelled run before running anything.
///
/// Every operation returns the run as it is afterwards. Moving a run to the status it is
/// already in (pausing a paused run) changes nothing and succeeds; a move the table on
/// [`RunStatus`] refuses, or a run the store does not have, is an error, and changes nothing.
///
/// ```
/// use flow_runtime::prelude::*;
/// use flow_runtime::store::{RunControl, RunFilter, RunStatus};
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
/// let info = store.status(&"c1".into()).await?.expect("stored");
/// // The run's start and its two steps.
/// assert_eq!((info.status, info.checkpoints), (RunStatus::Finished, 3));
/// let finished = store.list(&RunFilter::new().status(RunStatus::Finished)).await?;
/// assert_eq!(finished.len(), 1);
///
/// // A finished run cannot be cancelled.
/// assert!(store.cancel(&"c1".into()).await.is_err());
/// # Ok(())
/// # }
/// ```
///
/// # Implementing it
///
/// A store that implements it also overrides [`Store::status`] and
/// [`Store::mark_incompatible`], and makes [`Store::save`] refuse a checkpoint of a paused or
/// cancelled run with [`StoreErrorKind::Paused`](crate::error::StoreErrorKind::Paused) or
/// [`StoreErrorKind::Cancelled`](crate::error::StoreErrorKind::Cancelled), atomically with
/// the write: that is how running workflows honour control.
pub trait RunControl: Store {
    /// The runs `filter` selects, the most recently updated first.
    ///
    /// A run part of whose record cannot be read is listed too, with
    /// [`RunInfo::corrupt`] saying what (and status [`RunStatus::Corrupt`] when it is the
    /// status), so that one bad record never hides the others.
    fn list(
        &self,
        filter: &RunFilter,
    ) -> impl Future<Output = Result<Vec<RunInfo>, StoreError>> + Send;

    /// Pauses a run: it stops before its next step, until [`unpause`](Self::unpause).
    fn pause(&self, run_id: &RunId) -> impl Future<Output = Result<RunInfo, ControlError>> + Send;

    /// Unpauses a paused run: it is `Running` again, and
    /// [`Workflow::run_or_resume`](crate::state::Workflow::run_or_resume) continues it from
    /// its latest checkpoint. Unpausing does not run it: whoever drives runs does.
    fn unpause(&self, run_id: &RunId)
    -> impl Future<Output = Result<RunInfo, ControlError>> + Send;

    /// Cancels a run for good: it stops before its next step and is never resumed.
    fn cancel(&self, run_id: &RunId) -> impl Future<Output = Result<RunInfo, ControlError>> + Send;
}

/// What a store with run control says when it refuses the checkpoint of a stopped run.
pub(crate) fn refused(run_id: &RunId, step: &str, status: RunStatus) -> StoreError {
    let kind = match status {
        RunStatus::Cancelled => StoreErrorKind::Cancelled,
        RunStatus::Failed => StoreErrorKind::Failed,
        _ => StoreErrorKind::Paused,
    };
    StoreError::of_kind(
        kind,
        format!(
            "run `{run_id}` is {status}: {} is refused",
            crate::store::contract::checkpoint_of(step)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in [
            RunStatus::Running,
            RunStatus::Paused,
            RunStatus::Cancelled,
            RunStatus::Finished,
            RunStatus::Incompatible,
            RunStatus::Failed,
            RunStatus::Corrupt,
        ] {
            assert_eq!(RunStatus::from_name(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert_eq!(RunStatus::from_name("Running"), None);
    }

    #[test]
    fn transitions_follow_the_table() {
        use RunStatus::{Cancelled, Corrupt, Failed, Finished, Incompatible, Paused, Running};
        let table = [
            (Running, [Some(Paused), Some(Running), Some(Cancelled)]),
            (Paused, [Some(Paused), Some(Running), Some(Cancelled)]),
            (Incompatible, [Some(Paused), None, Some(Cancelled)]),
            (Failed, [None, Some(Running), Some(Cancelled)]),
            (Cancelled, [None, None, Some(Cancelled)]),
            (Finished, [None, None, None]),
            (Corrupt, [None, None, Some(Cancelled)]),
        ];
        for (from, expected) in table {
            let got = [Paused, Running, Cancelled].map(|to| from.transition(to));
            assert_eq!(got, expected, "from {from}");
        }
    }
}
