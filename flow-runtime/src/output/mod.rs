//! Output handling: sinks that store and send a workflow's results, formats, and dead letters.
//!
//! An [`Outputs`] attaches [`Sink`]s to a workflow's steps and to its exit. The built-in
//! sinks *store* ([`FileSink`]: append to a file), or *notify* ([`ChannelSink`]: a tokio
//! channel; `Webhook`, feature `http`: an HTTP POST); implement [`Sink`] for a table or
//! anything else. Any sink can deliver its value [formatted](Sink::formatted) by a
//! [`Format`]: JSON, pretty JSON, text from a function, or a template (feature `templates`).
//!
//! # Guarantees
//!
//! A result is never dropped silently.
//!
//! - **A delivery is part of its step.** After a step succeeds, its output is delivered to
//!   every sink attached to it (and, for the run's final result, to the exit's sinks) before
//!   the run goes on. Sinks are independent: one failing does not stop the others.
//! - **Failures are retried like tool calls.** Transient failures and timeouts are retried as
//!   the [`Retry`](crate::tool::Retry) policy says, after the `Retry-After` the receiver asked
//!   for when there is one (up to [`Outputs::max_retry_after`]; a longer one ends the delivery
//!   at once); permanent failures are not. Each attempt has a timeout and each delivery a
//!   deadline (30 s and 2 min by default, see [`Outputs`]). Each delivery, successful or not, is
//!   recorded in the run's history as a [`CallRecord`](crate::state::CallRecord) of kind
//!   [`Output`](crate::state::CallKind::Output), with its attempts and its error.
//! - **A delivery that fails for good is surfaced.** The run stops with an error the caller
//!   sees ([`OutputError::Undelivered`], naming the run, the step and the sinks), and, when a
//!   [`DeadLetter`] is configured, the value is stored there with the sink and the error.
//!   Should the dead letter fail too, the error says the value is stored nowhere
//!   ([`OutputError::DeadLetter`]). Error messages never contain the value.
//! - **Delivery is at least once.** Resuming a run that stopped on a failed delivery runs the
//!   step again and delivers again, to every sink of the step (including those that had it),
//!   with the same [idempotency key](Delivery::idempotency_key) as before; retries repeat it
//!   too. A sink that must not duplicate drops keys it has seen (the `Webhook` sends it as an
//!   `Idempotency-Key` header, [`FileSink`] writes it in each record).
//!
//! ```
//! use flow_runtime::output::{ChannelSink, DeadLetter, Format, Outputs, Sink};
//! use flow_runtime::prelude::*;
//! use std::time::Duration;
//!
//! #[workflow]
//! pub mod trip {
//!     #[step(entry, exit)]
//!     pub async fn book(name: String) -> Result<serde_json::Value, std::convert::Infallible> {
//!         Ok(serde_json::json!({ "pnr": "X7K2QP", "name": name }))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (tx, mut rx) = tokio::sync::mpsc::channel(16);
//! let outputs = Outputs::new()
//!     .on_exit(ChannelSink::new(tx).formatted(Format::text(|v| format!("Booked {}.", v["pnr"].as_str().unwrap_or("?")))))
//!     .retry(Retry::exponential(Duration::from_millis(100)).max_attempts(4))
//!     .dead_letter(DeadLetter::memory());
//!
//! let ctx = Ctx::builder(()).outputs(outputs).build();
//! trip::Workflow::run(&ctx, "Ada".into()).await?;
//!
//! // The run delivered its final result before it returned, and recorded the delivery.
//! let delivery = rx.recv().await.unwrap();
//! assert_eq!(delivery.formatted().unwrap().body(), "Booked X7K2QP.");
//! assert_eq!(ctx.calls()[0].attempts, 1);
//! # Ok(())
//! # }
//! ```

mod channel;
mod dead_letter;
mod error;
mod file;
mod format;
mod outputs;
mod sink;
#[cfg(feature = "http")]
mod webhook;

pub use self::channel::ChannelSink;
pub use self::dead_letter::{DeadLetter, DeadLetterRecord};
pub use self::error::{DeliveryError, OutputError};
pub use self::file::FileSink;
pub use self::format::{Format, Formatted};
pub use self::outputs::Outputs;
pub use self::sink::{Delivery, FormattedSink, Sink};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use self::webhook::Webhook;
