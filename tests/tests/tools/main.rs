//! Tools: the policy stack, `HttpJson` and `ServiceTool` against real servers on loopback, tools
//! called from steps, the catalogue, idempotency keys, and secrets that never print.
//!
//! One test binary per concern (tower's `tests/<concern>/main.rs`): each links the runtime once.

mod agents;
mod hardening_keys;
mod hardening_tools;
mod models;
mod policy;
mod step_tools;
mod tool_catalogue;
mod tool_http;
mod tool_tower;
