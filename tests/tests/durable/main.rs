//! Durable runs: the engine's timers and events, run control, `SqliteStore` and `PgStore`
//! under real workflows, and what a store must keep or refuse. (Real crashes are in `tests/processes`.)
//!
//! One test binary per concern (tower's `tests/<concern>/main.rs`): each links the runtime once.

mod approvals;
mod chains;
mod engine;
mod hardening_events;
mod hardening_store;
mod journal;
mod pg_store;
mod run_api;
mod run_control;
mod sqlite_store;
mod store_conformance;
mod workflow_catalogue;
