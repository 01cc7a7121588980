//! Agent workflows whose mistakes are compile errors.
//!
//! Write each step of a workflow as a plain `async fn` in a module, annotate the module with
//! [`#[workflow]`](macro@workflow), and get a typestate state machine: calling a step out of
//! order, handing a step unvalidated input, or declaring a broken graph does not compile, and
//! the error says what to do. The same generated code runs the whole workflow by itself
//! ([`Workflow::run`](state::Workflow::run)), storing a checkpoint after every step so that a
//! run can [`resume`](state::Workflow::resume) from where it was.
//!
//! ```
//! use flow_runtime::prelude::*;
//!
//! #[workflow]
//! pub mod greet {
//!     use super::*;
//!
//!     /// Input processing: trims and checks the raw name.
//!     #[step(entry)]
//!     pub async fn clean(name: String) -> Result<String, Invalid> {
//!         Ok(name.trim().to_owned())
//!     }
//!
//!     #[step(after = clean, exit)]
//!     pub async fn hello(name: String) -> Result<String, Invalid> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), greet::FlowError> {
//! let ctx = Ctx::new(());
//!
//! // The whole graph at once…
//! assert_eq!(greet::Workflow::run(&ctx, " Ada ".into()).await?, "hello, Ada");
//!
//! // …or one checked step at a time (another run: a context is one run).
//! let ctx = Ctx::new(());
//! let flow = greet::Flow::new(&ctx, " Ada ".into());
//! let flow = flow.clean().await?;
//! assert_eq!(flow.hello().await?, "hello, Ada");
//! # Ok(())
//! # }
//! ```
//!
//! The DSL, shape by shape, is on the pages of [`#[workflow]`](macro@workflow) (the module, what
//! it generates, how to run it) and [`#[step]`](macro@step) (chains, routes, fan-out and join,
//! workers, loops, tools, events, sleeps, validated input); every compile error is in the
//! README's catalogue.
//!
//! # Dependencies
//!
//! What a crate with workflows adds to its `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! flow-runtime = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! # only for `Valid<T>` input: the same minor version as flow-runtime's (see below)
//! garde = { version = "0.23", features = ["derive"] }
//! ```
//!
//! A tool's input and output derive [`JsonSchema`] through this crate's re-export (in the
//! prelude, with the `schemars` path its derive expands to), so no `schemars` dependency is needed
//! and its version cannot clash with this crate's. garde's derive cannot be re-exported that way
//! (it expands to `::garde::…`, which only a dependency named `garde` satisfies); a garde of
//! another minor version derives another `Validate` trait, and `Valid::new` then reports that the
//! type "has no validation rules".
//! garde is deliberately not re-exported: a second path to its `Validate` trait would make
//! compile errors spell a step named `validate`'s typestate marker in full.
//!
//! # Cargo features
//!
//! Without any feature (`default-features = false`) the crate is the DSL, runs and the
//! [`Engine`](state::Engine) on [`MemoryStore`](store::MemoryStore), and tools with their
//! policies. Integrations are compiled only when asked for, and their items are marked with the
//! feature on docs.rs:
//!
//! - `sqlite` (default): `store::SqliteStore`, durable runs in an embedded SQLite file.
//! - `http`: `tool::http::HttpJson`, `output::Webhook` and the model clients, over reqwest
//!   (plain HTTP).
//! - `rustls`: HTTPS for `http`.
//! - `models`: `model::OpenAiChat` and `model::AnthropicMessages`, chat models over HTTP and
//!   HTTPS (turns on `http`, which has the clients, and `rustls`).
//! - `scripted`: `model::scripted::ScriptedModel`, a scripted model server on loopback for tests
//!   and examples (turns on `http`).
//! - `templates`: `output::Format::template`, minijinja templates for formatted outputs.
//! - `tower`: `tool::ServiceTool`, any `tower::Service` as a tool.
//! - `conformance`: `store::conformance`, the test suite every store passes, for store authors.
//! - `otel`: `otel`, OpenTelemetry export of runs, steps, tool and model calls over OTLP/HTTP,
//!   one trace per run across its resumes (opentelemetry, tracing-opentelemetry,
//!   opentelemetry-otlp over reqwest).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
mod driver;
pub mod error;
pub mod input;
pub mod model;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otel;
pub mod output;
pub mod prelude;
pub mod state;
pub mod store;
pub mod tool;

#[doc(hidden)]
pub mod __private;

#[doc = include_str!("../docs/workflow.md")]
pub use flow_macros::workflow;

#[doc = include_str!("../docs/step.md")]
pub use flow_macros::step;

/// The JSON Schema of a type, for a tool's input and output: derive it with
/// `#[derive(JsonSchema)]` (from the [prelude], which also brings the
/// `schemars` path the derive expands to).
pub use schemars::JsonSchema;

/// schemars, the JSON Schema generator behind [`JsonSchema`]: the version this crate's
/// [`Tool`](tool::Tool) bounds name.
pub use schemars;
