//! Output sinks: webhooks on loopback, files and channels, alone and attached to a workflow's
//! steps as a run uses them.
//!
//! One test binary per concern (tower's `tests/<concern>/main.rs`): each links the runtime once.

mod run_outputs;
mod sinks;
