//! State management: the run context, the [`Workflow`] trait every `#[workflow]` implements,
//! checkpoints, the stores that keep them, and run control (status, list, pause, cancel).

mod approve;
mod ctx;
mod engine;
mod json;
mod loops;
mod record;
mod wait;
mod workflow;

pub use self::approve::Approved;
pub use self::ctx::{Ctx, CtxBuilder, RunId};
pub(crate) use self::engine::error_chain;
pub use self::engine::{Engine, EngineBuilder, EngineError, EngineReport, RunResult, Setup};
pub use self::json::MAX_JSON_DEPTH;
pub(crate) use self::json::{too_deep, unreadable};
pub use self::loops::NoLoops;
pub(crate) use self::record::Recorder;
pub use self::record::{CallKind, CallOutcome, CallRecord};
pub(crate) use self::wait::now;
pub use self::wait::{Event, EventOf, Sleep, Wake};
pub use self::workflow::{Done, LoopExhausted, Pending, Workflow};
pub use crate::driver::{FailedAt, Outcome, Park};

/// A time as people read it in messages: RFC 3339, UTC, to the second.
pub(crate) fn format_time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
