//! The [`RunQueue`] trait: what an [`Engine`](crate::state::Engine) needs of a store to find
//! due runs and to hold them under a lease; and the lease's [`Fence`].

use crate::error::StoreError;
use crate::state::RunId;
use crate::store::{Failure, RunControl};
use std::future::Future;
use std::time::SystemTime;

/// What an [`Engine`](crate::state::Engine) needs of a store besides [`RunControl`]: which
/// runs are due, leases on them, when the next one will be, and a way to set a failed run
/// aside.
///
/// # Leases and fencing
///
/// Several engines (in one process or many, on one machine or many) can share one store: an
/// engine runs a due run only while it holds the run's **lease**. [`claim`](Self::claim)
/// takes the leases of due runs nobody holds (or whose holder let the lease expire) in one
/// atomic step, so two engines never hold the same run at once; each claim increases the
/// run's **fence**, an epoch number. The engine renews its leases by heartbeat
/// ([`renew`](Self::renew)) well inside their length, and [`release`](Self::release)s a run
/// when its turn ends. A crashed engine's runs are claimed by another once their leases
/// expire, and resume from their last checkpoint.
///
/// Every write an engine makes for a run it holds carries the lease's [`Fence`]
/// ([`Checkpoint::fence`](crate::store::Checkpoint::fence),
/// [`JournalEntry::fence`](crate::store::JournalEntry::fence),
/// [`Approval::fence`](crate::store::Approval::fence), the `fence` of
/// [`Store::wait`](crate::store::Store::wait) and [`fail`](Self::fail)); the store compares
/// it with the run's current fence **in the same atomic step as the write**, and refuses a
/// write whose fence is not the run's with
/// [`StoreErrorKind::LeaseLost`](crate::error::StoreErrorKind::LeaseLost), changing nothing.
/// An engine that lost a run's lease (paused, partitioned, too slow to renew) therefore cannot
/// overwrite what the run's new holder wrote: its next write is refused and it stops the run.
/// A write without a fence (`None`: a run driven by [`Workflow::run`](crate::state::Workflow::run),
/// not an engine) is not fenced.
///
/// `SqliteStore` (feature `sqlite`), `PgStore` (feature `postgres`) and
/// [`MemoryStore`](crate::store::MemoryStore) implement it; the conformance suite checks the
/// leases of each.
pub trait RunQueue: RunControl {
    /// Runs of the workflows named in `workflows` that are `Running` and due at `now` (no
    /// wake-up time, or one not after `now`), the longest-due first, at most `limit`:
    /// runs due at once, then by wake-up time; among runs due at the same time, the least
    /// recently updated first (`PgStore`: the oldest first, since its index leaves out the time
    /// of the latest checkpoint so that a checkpoint updates its row in place).
    /// Leases are not looked at: this is a read, for tools; engines [`claim`](Self::claim).
    fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunId>, StoreError>> + Send;

    /// Claims up to `limit` runs for `worker` until `until`, in one atomic step: runs of the
    /// workflows named in `workflows` that are [due](Self::due) at `now` and that no worker
    /// holds (never leased, released, or leased until a time not after `now`), the
    /// longest-due first. Each claimed run's fence increases by one, and its lease is
    /// `worker`'s until `until`. Two claims never return the same run while its lease lasts.
    fn claim(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
        worker: &str,
        until: SystemTime,
    ) -> impl Future<Output = Result<Vec<Lease>, StoreError>> + Send;

    /// Extends each of `leases` that is still current (held, and its fence the run's) to
    /// `until`, in one atomic step, and returns them: a run missing from the answer is no
    /// longer the worker's (another worker claimed it after the lease expired, or it was
    /// released). Only the leases given are renewed, so a lease its worker has forgotten (a
    /// turn that ended without releasing it) expires.
    fn renew(
        &self,
        leases: &[Lease],
        until: SystemTime,
    ) -> impl Future<Output = Result<Vec<Lease>, StoreError>> + Send;

    /// Gives up a lease: the run can be claimed at once (when it is due). A lease that is no
    /// longer current (its fence is not the run's) is left alone.
    fn release(&self, lease: &Lease) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A hint that runs may have become due through another process (a new run, an event, a
    /// decision, an unpause), for an engine to look at once instead of at its next poll: the
    /// receiver changes when the store hears of one. A hint only: engines poll as well, and a
    /// store may miss or repeat hints.
    ///
    /// The default, for stores without one, is `None`. `PgStore` listens on a PostgreSQL
    /// channel (`LISTEN/NOTIFY`), starting when this is first called, inside a tokio runtime.
    fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        None
    }

    /// The earliest wake-up time after `after` among `Running` runs, if any.
    fn next_wake(
        &self,
        after: SystemTime,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send;

    /// Marks a `Running` run [`Failed`](crate::store::RunStatus::Failed): a step failed.
    /// It keeps its latest checkpoint; [`unpause`](RunControl::unpause) retries it. The store
    /// keeps `failure` (the step and the reason), read back as
    /// [`RunInfo::failure`](crate::store::RunInfo::failure) until the run's next checkpoint.
    /// A run in any other status is left as it is.
    ///
    /// # Errors
    ///
    /// [`StoreErrorKind::LeaseLost`](crate::error::StoreErrorKind::LeaseLost): `fence` is
    /// not the run's (see [leases](Self#leases-and-fencing)); nothing changed.
    fn fail(
        &self,
        run_id: &RunId,
        failure: &Failure,
        fence: Option<Fence>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A worker's lease on a run, from [`RunQueue::claim`] or [`RunQueue::renew`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The run.
    pub run_id: RunId,
    /// The lease's fence: what the worker's writes for the run carry.
    pub fence: Fence,
    /// When the lease expires unless renewed.
    pub until: SystemTime,
}

impl Lease {
    /// A lease on `run_id`, for stores that hand one out.
    #[must_use]
    pub fn new(run_id: RunId, fence: Fence, until: SystemTime) -> Self {
        Self {
            run_id,
            fence,
            until,
        }
    }
}

/// The fencing token of a [`Lease`]: the run's lease epoch when it was claimed. A store
/// refuses a write whose fence is not the run's current one (see
/// [`RunQueue`](RunQueue#leases-and-fencing)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence(u64);

impl Fence {
    /// The fence of epoch `epoch`.
    #[must_use]
    pub const fn new(epoch: u64) -> Self {
        Self(epoch)
    }

    /// Its epoch: how many times the run has been claimed.
    #[must_use]
    pub const fn epoch(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The error of a write whose fence is not the run's.
pub(crate) fn lease_lost(run_id: &RunId, what: &str, fence: Fence) -> StoreError {
    StoreError::of_kind(
        crate::error::StoreErrorKind::LeaseLost,
        format!(
            "run `{run_id}`: {what} refused: this worker's lease on the run (fence {fence}) has \
             passed to another worker, which goes on with the run"
        ),
    )
}
