//! Stores: where runs keep their checkpoints, events and status, and the contract every store
//! implements.

mod checkpoint;
#[cfg(feature = "conformance")]
pub mod conformance;
mod contract;
mod control;
#[cfg(feature = "sqlite")]
pub(crate) mod envelope;
mod memory;
mod queue;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use self::checkpoint::{Checkpoint, StoredEvent};
pub(crate) use self::contract::DynStore;
pub use self::contract::Store;
pub use self::control::{RunControl, RunFilter, RunInfo, RunStatus};
pub use self::memory::MemoryStore;
pub use self::queue::{EngineLock, RunQueue};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{HistoryEntry, Prune, SqliteStore};
