use crate::output::{Delivery, Sink};
use crate::tool::ToolError;
use std::fmt;
use tokio::sync::mpsc;

/// Notifies another part of the program: sends every [`Delivery`] on a tokio channel.
///
/// When the channel is full, a delivery waits for room (up to the per-attempt
/// [timeout](crate::output::Outputs::timeout), if one is set: then it is retried like any
/// transient failure). When the receiver is gone, the delivery fails with a permanent error.
/// The delivery counts as done once it is in the channel, not once it is received.
///
/// ```
/// use flow_runtime::output::{ChannelSink, Outputs};
/// use flow_runtime::prelude::*;
///
/// #[workflow]
/// pub mod trip {
///     #[step(entry, exit)]
///     pub async fn book(pnr: String) -> Result<String, std::convert::Infallible> {
///         Ok(pnr)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), trip::FlowError> {
/// let (tx, mut rx) = tokio::sync::mpsc::channel(16);
/// let outputs = Outputs::new().on_exit(ChannelSink::new(tx).named("ui"));
///
/// let ctx = Ctx::builder(()).outputs(outputs).build();
/// trip::Workflow::run(&ctx, "X7K2QP".into()).await?;
///
/// let delivery = rx.recv().await.unwrap();
/// assert_eq!((delivery.step(), delivery.is_exit()), ("book", true));
/// assert_eq!(delivery.value(), "X7K2QP");
/// assert_eq!(ctx.calls()[0].name, "ui");
/// # Ok(())
/// # }
/// ```
pub struct ChannelSink {
    tx: mpsc::Sender<Delivery>,
    name: String,
}

impl ChannelSink {
    /// Sends on `tx`. Named `channel`.
    #[must_use]
    pub fn new(tx: mpsc::Sender<Delivery>) -> Self {
        Self {
            tx,
            name: "channel".to_owned(),
        }
    }

    /// The same sink, named `name` in records and errors.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl fmt::Debug for ChannelSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSink")
            .field("name", &self.name)
            .field("closed", &self.tx.is_closed())
            .finish_non_exhaustive()
    }
}

impl Sink for ChannelSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), ToolError> {
        self.tx
            .send(delivery.clone())
            .await
            .map_err(|_| ToolError::permanent("the channel's receiver is gone"))
    }
}
