//! The [`RunQueue`] trait: what an [`Engine`](crate::state::Engine) needs of a store to find
//! due runs; and the engine lock.

use crate::error::StoreError;
use crate::state::{EngineError, RunId};
use crate::store::RunControl;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

/// What an [`Engine`](crate::state::Engine) needs of a store besides [`RunControl`]: which runs are due, when the
/// next one will be, and a way to set a failed run aside.
///
/// `SqliteStore` (feature `sqlite`) and [`MemoryStore`](crate::store::MemoryStore)
/// implement it.
pub trait RunQueue: RunControl {
    /// Runs of the workflows named in `workflows` that are `Running` and due at `now` (no
    /// wake-up time, or one not after `now`), the longest-due first, at most `limit`.
    fn due(
        &self,
        now: SystemTime,
        workflows: &[&str],
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunId>, StoreError>> + Send;

    /// The earliest wake-up time after `after` among `Running` runs, if any.
    fn next_wake(
        &self,
        after: SystemTime,
    ) -> impl Future<Output = Result<Option<SystemTime>, StoreError>> + Send;

    /// Marks a `Running` run [`Failed`](crate::store::RunStatus::Failed): a step failed.
    /// It keeps its latest checkpoint; [`unpause`](RunControl::unpause) retries it. The store
    /// keeps `message`, read back as [`RunInfo::failure`](crate::store::RunInfo::failure).
    fn fail(
        &self,
        run_id: &RunId,
        message: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the store's engine lock, held by [`Engine::run_until`](crate::state::Engine::run_until) for as long as it runs, so
    /// that a second engine on the same store is refused instead of running the same runs
    /// again. The lock is released when the [`EngineLock`] is dropped, and by the operating
    /// system when the process dies.
    ///
    /// The default, for stores that cannot be shared, takes no lock.
    ///
    /// # Errors
    ///
    /// [`EngineError::Locked`]: another engine holds the lock.
    fn lock_engine(&self) -> Result<EngineLock, EngineError> {
        Ok(EngineLock::new(()))
    }
}

/// A store's engine lock, held while an engine runs (see [`RunQueue::lock_engine`]); released
/// when dropped.
pub struct EngineLock {
    _held: Box<dyn Send + Sync>,
}

impl EngineLock {
    /// A lock that is held as long as `guard` lives: the guard releases it when dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(guard),
        }
    }
}

impl fmt::Debug for EngineLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineLock").finish_non_exhaustive()
    }
}

/// An engine lock inside one process, for stores no other process can open (a
/// `MemoryStore`, an in-memory SQLite database).
#[derive(Debug, Default)]
pub(crate) struct InProcessLock(Arc<std::sync::atomic::AtomicBool>);

impl InProcessLock {
    pub(crate) fn lock(&self, store: &str) -> Result<EngineLock, EngineError> {
        use std::sync::atomic::Ordering;
        if self.0.swap(true, Ordering::AcqRel) {
            return Err(EngineError::Locked {
                store: store.to_owned(),
                holder: "an engine in this process".to_owned(),
            });
        }
        Ok(EngineLock::new(Release(Arc::clone(&self.0))))
    }
}

/// Releases an [`InProcessLock`] when dropped.
struct Release(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}
