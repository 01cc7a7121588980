//! Support for flow's behaviour tests (`tests/<concern>/main.rs`): what several test files need
//! and used to write out each for itself.
//!
//! - [`fleet`]: the workflow the multi-worker tests run in many processes at once.
//! - [`http`]: a real HTTP server on an ephemeral loopback port, and the headers it saw.
//! - [`keyed`]: a loopback service that counts requests per idempotency key, and a tool for it.
//! - [`model`]: either model client against the scripted model server, with a test key.
//! - [`pg`]: a throwaway PostgreSQL cluster for the test process, a fresh database per store.
//! - [`store`]: an SQLite file in a temporary directory, removed when the test ends.
//! - [`trace`]: a `tracing` subscriber that writes into memory, to search logs for secrets.
//! - [`error_chain`] and [`quick_retry`]: an error with everything under it, fast retries.
//!
//! The binaries in `src/bin` are child processes the tests start and kill (`CARGO_BIN_EXE_*`).

pub mod fleet;
pub mod http;
pub mod keyed;
pub mod model;
pub mod pg;
pub mod store;
pub mod trace;

use flow_runtime::tool::Retry;
use std::time::Duration;

/// `err` and every error under it (its `source()` chain), each as `Display` and `Debug`, one
/// per line: the text to search when a test asserts that something is, or is not, in an error.
#[must_use]
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{err}\n{err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        let _ = write!(out, "\n{e}\n{e:?}");
        source = e.source();
    }
    out
}

/// Exponential backoff from 1 ms, at most `attempts` attempts: retries that do not slow a test
/// down. Tests that care about the backoff's length set their own.
#[must_use]
pub fn quick_retry(attempts: u32) -> Retry {
    Retry::exponential(Duration::from_millis(1)).max_attempts(attempts)
}
