//! A run's store under an engine's lease: every write carries the lease's fence, and a lease
//! known to be lost stops the run's writes and calls before they reach the store or a tool.

use crate::error::{StoreError, StoreErrorKind};
use crate::state::RunId;
use crate::store::contract::DynStore;
use crate::store::queue::lease_lost;
use crate::store::{
    Approval, ApprovalError, Checkpoint, Decision, Fence, JournalEntry, RunInfo, StoredEvent,
    WorkflowInfo,
};
use crate::tool::Visit;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An engine's lease on one run, shared by the run's task (its writes) and the engine's
/// heartbeat (which renews it, or finds it lost).
#[derive(Debug)]
pub(crate) struct Held {
    run_id: RunId,
    fence: Fence,
    /// When the lease expires as last renewed, in milliseconds since the Unix epoch.
    until: AtomicU64,
    /// Set once the lease is known to be another worker's: by the heartbeat, or by a write
    /// the store refused.
    lost: AtomicBool,
}

impl Held {
    pub(crate) fn new(run_id: RunId, fence: Fence, until: SystemTime) -> Self {
        Self {
            run_id,
            fence,
            until: AtomicU64::new(millis(until)),
            lost: AtomicBool::new(false),
        }
    }

    pub(crate) fn fence(&self) -> Fence {
        self.fence
    }

    pub(crate) fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The lease was renewed until `until`.
    pub(crate) fn renewed(&self, until: SystemTime) {
        self.until.store(millis(until), Ordering::Release);
    }

    /// The lease is another worker's now.
    pub(crate) fn lose(&self) {
        self.lost.store(true, Ordering::Release);
    }

    /// Whether the lease is known to be lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Whether the lease may have expired by now, as far as this process knows: its last
    /// renewal's time has passed (the heartbeat did not run in time: the process was paused,
    /// or the store did not answer).
    fn expired(&self) -> bool {
        millis(crate::state::now()) >= self.until.load(Ordering::Acquire)
    }

    /// Refuses `what` when the lease is known lost.
    fn check(&self, what: &str) -> Result<(), StoreError> {
        if self.is_lost() {
            return Err(lease_lost(&self.run_id, what, self.fence));
        }
        Ok(())
    }

    /// Notes a refusal of the store's.
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(error) = &result
            && error.kind() == StoreErrorKind::LeaseLost
        {
            self.lose();
        }
        result
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `inner` under the lease `held`: the store a run's [`Ctx`](crate::state::Ctx) holds while an
/// engine runs it.
pub(crate) struct Fenced {
    inner: Arc<dyn DynStore>,
    held: Arc<Held>,
}

impl Fenced {
    pub(crate) fn new(inner: Arc<dyn DynStore>, held: Arc<Held>) -> Self {
        Self { inner, held }
    }
}

impl DynStore for Fenced {
    fn save_boxed(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.held.check("the checkpoint")?;
            let fenced = checkpoint.with_fence(Some(self.held.fence));
            self.held.note(self.inner.save_boxed(fenced).await)
        })
    }

    fn load_to_resume_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<Option<Checkpoint>, StoreError>> {
        self.inner.load_to_resume_boxed(run_id, fingerprint)
    }

    fn status_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
    ) -> BoxFuture<'a, Result<Option<RunInfo>, StoreError>> {
        self.inner.status_boxed(run_id)
    }

    fn mark_incompatible_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        fingerprint: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.inner.mark_incompatible_boxed(run_id, fingerprint)
    }

    fn wait_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        event: &'a str,
        until: SystemTime,
        _fence: Option<Fence>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.held.check("the wait")?;
            let result = self
                .inner
                .wait_boxed(run_id, step, event, until, Some(self.held.fence))
                .await;
            self.held.note(result)
        })
    }

    fn next_event_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredEvent>, StoreError>> {
        self.inner.next_event_boxed(run_id, name)
    }

    fn record_call_boxed(&self, entry: JournalEntry) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.held.check("the journal entry")?;
            let fenced = entry.with_fence(Some(self.held.fence));
            self.held.note(self.inner.record_call_boxed(fenced).await)
        })
    }

    /// Looked up before every call a step makes: a call not journaled is about to be made, so
    /// a lease that may have expired (this process was paused past it) stops the run here,
    /// before the tool is called again by a worker that no longer holds the run.
    fn recorded_call_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<JournalEntry>, StoreError>> {
        Box::pin(async move {
            let found = self
                .inner
                .recorded_call_boxed(run_id, step, visit, position)
                .await?;
            if found.is_none() {
                self.held.check("the call")?;
                if self.held.expired() {
                    self.held.lose();
                    self.held.check("the call")?;
                }
            }
            Ok(found)
        })
    }

    fn register_workflow_boxed(&self, info: WorkflowInfo) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.register_workflow_boxed(info)
    }

    fn request_approval_boxed(
        &self,
        approval: Approval,
    ) -> BoxFuture<'_, Result<Approval, StoreError>> {
        Box::pin(async move {
            self.held.check("the approval request")?;
            let fenced = approval.with_fence(Some(self.held.fence));
            self.held
                .note(self.inner.request_approval_boxed(fenced).await)
        })
    }

    fn approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        step: &'a str,
        visit: Visit,
        position: u32,
    ) -> BoxFuture<'a, Result<Option<Approval>, StoreError>> {
        self.inner.approval_boxed(run_id, step, visit, position)
    }

    fn decide_approval_boxed<'a>(
        &'a self,
        run_id: &'a RunId,
        call_id: &'a str,
        decision: Decision,
    ) -> BoxFuture<'a, Result<Approval, ApprovalError>> {
        self.inner.decide_approval_boxed(run_id, call_id, decision)
    }
}

/// How often an engine renews its leases: a quarter of their length, so that three
/// heartbeats in a row can be late or fail before a lease expires.
pub(crate) fn heartbeat(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(10))
}
