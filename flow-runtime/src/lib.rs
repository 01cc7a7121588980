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
//! // …or one checked step at a time.
//! let flow = greet::Flow::new(&ctx, " Ada ".into());
//! let flow = flow.clean().await?;
//! assert_eq!(flow.hello().await?, "hello, Ada");
//! # Ok(())
//! # }
//! ```
//!
//! The DSL, the generated items and every compile error are described in the README.
//!
//! # Cargo features
//!
//! Without any feature (`default-features = false`) the crate is the DSL, runs and the
//! [`Engine`](state::Engine) on [`MemoryStore`](state::MemoryStore), and tools with their
//! policies. Integrations are compiled only when asked for:
//!
//! - `sqlite` (default): `state::SqliteStore`, durable runs in an embedded SQLite file.
//! - `http`: `tool::http::HttpJson` and `output::Webhook`, over reqwest (plain HTTP).
//! - `rustls`: HTTPS for `http`.
//! - `templates`: `output::Format::template`, minijinja templates for formatted outputs.
//! - `tower`: `tool::ServiceTool`, any `tower::Service` as a tool.

mod driver;
pub mod error;
pub mod input;
pub mod output;
pub mod prelude;
pub mod state;
pub mod tool;

#[doc(hidden)]
pub mod __private;

/// Turns an inline module of `async fn` steps into a typestate workflow.
///
/// ```text
/// #[workflow]                      #[workflow(deps = MyDeps)]      #[workflow(crate = path)]
/// #[step(entry)]                   the step that takes the raw input
/// #[step(after = a)]               runs after `a`, takes its output
/// #[step(after = [a, b])]          a join: waits for branches `a` and `b`, takes both outputs
/// #[step(after = a, exit)]         its output ends the run
/// #[step(after = a, routes = E)]   returns enum `E`; each variant leads to a step
/// #[step(after = a, workers = 4)]  runs once per item of `a`'s `Vec`, at most 4 at once
/// #[to(step, max = 3, exhausted = other)]   on a route variant: target, loop bound
/// ```
///
/// See the crate-level documentation and the README for the full description.
pub use flow_macros::workflow;

/// Marks a step inside a [`#[workflow]`](macro@workflow) module; an error anywhere else.
pub use flow_macros::step;
