//! State management: the run context, the [`Workflow`] trait every `#[workflow]` implements,
//! checkpoints and the stores that keep them.

mod ctx;
mod store;
mod workflow;

pub use self::ctx::{Ctx, CtxBuilder, RunId};
pub use self::store::{Checkpoint, MemoryStore, Store};
pub use self::workflow::{Done, LoopExhausted, Pending, Workflow};
