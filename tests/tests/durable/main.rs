//! Durable runs: the engine's timers and events, run control, `SqliteStore` under real workflows
//! and real crashes (the child processes in `src/bin`), and what a store must keep or refuse.
//!
//! One test binary per concern (tower's `tests/<concern>/main.rs`): each links the runtime once.

mod crash;
mod engine;
mod hardening_events;
mod hardening_store;
mod run_control;
mod sqlite_store;
