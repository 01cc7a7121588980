//! State management: the run context, the [`Workflow`] trait every `#[workflow]` implements,
//! checkpoints, the stores that keep them, and run control (status, list, pause, cancel).

mod control;
mod ctx;
mod record;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod workflow;

pub use self::control::{RunControl, RunFilter, RunInfo, RunStatus};
pub use self::ctx::{Ctx, CtxBuilder, RunId};
pub(crate) use self::record::Recorder;
pub use self::record::{CallKind, CallOutcome, CallRecord};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{HistoryEntry, Prune, SqliteStore};
pub use self::store::{Checkpoint, MemoryStore, Store};
pub use self::workflow::{Done, LoopExhausted, Pending, Workflow};
