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
pub use self::wait::{Event, EventOf, Sleep, Wake};
pub(crate) use self::wait::{later, now};
pub use self::workflow::{Done, LoopExhausted, Pending, Workflow};
pub use crate::driver::{FailedAt, Outcome, Park};

/// The last time RFC 3339 can write, the end of year 9999: wake-up times and deadlines are
/// kept at most this far ahead (see [`Wake::at`]), so that every time a run holds can be shown.
pub(crate) fn latest_time() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::new(253_402_300_799, 999_999_999)
}

/// A time as people read it in messages: RFC 3339, UTC, to the second. A time it cannot write
/// (before 1970, or after [`latest_time`]: a corrupt row) is shown as the nearest one it can;
/// humantime's `Display` fails on those, and `to_string` would panic.
pub(crate) fn format_time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t.clamp(std::time::UNIX_EPOCH, latest_time())).to_string()
}
