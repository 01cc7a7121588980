//! Workflows run in memory: every shape of graph (chains, fan-out and joins, routes, loops,
//! workers), what a step sees, failures and panics, checkpoints, resume and `run_or_resume`.
//!
//! One test binary per concern (tower's `tests/<concern>/main.rs`): each links the runtime once.

mod chains;
mod checkpoint;
mod context;
mod converging;
mod earlier;
mod errors;
mod fan_out;
mod hardening_panics;
mod hygiene;
mod idempotent;
mod join;
mod linear;
mod loops;
mod resume;
mod routing;
mod valid;
mod workers;
