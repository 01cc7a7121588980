use crate::output::{Format, Formatted};
use crate::state::RunId;
use crate::tool::{IdempotencyKey, ToolError};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Where a workflow's results go: a file, a table, a channel, a webhook.
///
/// A sink makes one attempt at delivering one [`Delivery`] and classifies its failures like a
/// [`Tool`](crate::tool::Tool) does: [`ToolError::transient`] for those that may go away on
/// their own (they are retried as the [`Outputs`](crate::output::Outputs)' retry policy says),
/// [`ToolError::permanent`] for the others. Delivery is at least once: a sink may see the same
/// delivery again (a retry after an answer that was lost, a run resumed after a crash), always
/// with the same [idempotency key](Delivery::idempotency_key), so a sink that must not
/// duplicate should remember the keys it has seen.
///
/// The built-in sinks are [`FileSink`](crate::output::FileSink),
/// [`ChannelSink`](crate::output::ChannelSink) and `Webhook` (feature `http`); wrap any sink
/// with [`formatted`](Sink::formatted) to have it deliver text made by a [`Format`].
///
/// ```
/// use flow_runtime::output::{Delivery, Outputs, Sink};
/// use flow_runtime::prelude::*;
/// use std::sync::{Arc, Mutex};
///
/// /// Keeps every value in memory, once per idempotency key.
/// #[derive(Default)]
/// struct Table(Mutex<Vec<(String, serde_json::Value)>>);
///
/// impl Sink for Table {
///     fn name(&self) -> &str {
///         "table"
///     }
///
///     async fn deliver(&self, delivery: &Delivery) -> Result<(), ToolError> {
///         let mut rows = self.0.lock().map_err(|_| ToolError::permanent("table is poisoned"))?;
///         let key = delivery.idempotency_key().to_string();
///         if !rows.iter().any(|(k, _)| *k == key) {
///             rows.push((key, delivery.value().clone()));
///         }
///         Ok(())
///     }
/// }
///
/// #[workflow]
/// pub mod trip {
///     #[step(entry)]
///     pub async fn book(flight: String) -> Result<String, std::convert::Infallible> {
///         Ok(format!("{flight}: X7K2QP"))
///     }
///
///     #[step(after = book, exit)]
///     pub async fn confirm(pnr: String) -> Result<String, std::convert::Infallible> {
///         Ok(pnr)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), trip::FlowError> {
/// let table = Arc::new(Table::default());
/// let outputs = Outputs::new().on_step("book", Arc::clone(&table));
///
/// let ctx = Ctx::builder(()).run_id("run-1").outputs(outputs.clone()).build();
/// trip::Workflow::run(&ctx, "AF123".into()).await?;
/// // Run `run-1` again (as a resumed run does): same key, so stored once.
/// let again = Ctx::builder(()).run_id("run-1").outputs(outputs).build();
/// trip::Workflow::run(&again, "AF123".into()).await?;
/// assert_eq!(table.0.lock().unwrap().len(), 1);
/// assert_eq!(ctx.calls().len() + again.calls().len(), 2);
/// # Ok(())
/// # }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// The sink's name, in call records, dead-letter records and errors. Never a secret.
    fn name(&self) -> &str;

    /// Makes one attempt at delivering `delivery`.
    fn deliver(&self, delivery: &Delivery) -> impl Future<Output = Result<(), ToolError>> + Send;

    /// This sink, delivering the value formatted by `format`: every delivery it gets has
    /// [`Delivery::formatted`] set. A value the format cannot render (a template that prints a
    /// missing variable) fails the delivery with a permanent error.
    ///
    /// ```
    /// use flow_runtime::output::{FileSink, Format, Sink};
    ///
    /// let sink = FileSink::jsonl("bookings.txt").formatted(Format::text(|v| v["pnr"].to_string()));
    /// assert_eq!(sink.name(), "file bookings.txt");
    /// ```
    fn formatted(self, format: Format) -> FormattedSink<Self>
    where
        Self: Sized,
    {
        FormattedSink { sink: self, format }
    }
}

/// A shared sink: keep a handle on it (to read it back in a test) and attach a clone.
impl<S: Sink> Sink for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn deliver(&self, delivery: &Delivery) -> impl Future<Output = Result<(), ToolError>> + Send {
        (**self).deliver(delivery)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`Sink`], so that [`Outputs`](crate::output::Outputs) can hold
/// sinks of any type.
pub(crate) trait DynSink: Send + Sync + 'static {
    fn sink_name(&self) -> &str;
    fn deliver_boxed<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), ToolError>>;
}

impl<S: Sink> DynSink for S {
    fn sink_name(&self) -> &str {
        self.name()
    }

    fn deliver_boxed<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), ToolError>> {
        Box::pin(self.deliver(delivery))
    }
}

/// A sink delivering formatted text: made by [`Sink::formatted`].
pub struct FormattedSink<S> {
    sink: S,
    format: Format,
}

impl<S> FormattedSink<S> {
    /// The sink underneath.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The format.
    pub fn format(&self) -> &Format {
        &self.format
    }
}

impl<S: fmt::Debug> fmt::Debug for FormattedSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormattedSink")
            .field("sink", &self.sink)
            .field("format", &self.format)
            .finish()
    }
}

impl<S: Sink> Sink for FormattedSink<S> {
    fn name(&self) -> &str {
        self.sink.name()
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), ToolError> {
        let formatted = self
            .format
            .render(delivery.value())
            .map_err(|e| ToolError::permanent(e.to_string()))?;
        let delivery = delivery.clone().with_formatted(formatted);
        self.sink.deliver(&delivery).await
    }
}

/// What a [`Sink`] gets: a value, where it comes from, and its idempotency key.
///
/// `Serialize` makes the record the built-in sinks write when no [`Format`] is set:
///
/// ```json
/// {"run_id":"run-1","workflow":"trip","step":"book","exit":true,
///  "idempotency_key":"0b5a…","value":{"pnr":"X7K2QP"}}
/// ```
///
/// Cheap to clone (its parts are shared).
///
/// ```
/// use flow_runtime::output::{Delivery, Formatted};
/// use flow_runtime::state::RunId;
/// use flow_runtime::tool::IdempotencyKey;
/// use serde_json::json;
///
/// let run = RunId::from("run-1");
/// let delivery = Delivery::new(run.clone(), "trip", "book", IdempotencyKey::from("k-1"), json!(42))
///     .with_exit(true);
/// assert_eq!(delivery.attempt(), 1);
/// assert_eq!(
///     serde_json::to_value(&delivery).unwrap(),
///     json!({
///         "run_id": "run-1", "workflow": "trip", "step": "book", "exit": true,
///         "idempotency_key": "k-1", "value": 42,
///     })
/// );
/// // Without a format, the payload is that record as JSON.
/// assert_eq!(delivery.payload().content_type(), "application/json");
///
/// let delivery = delivery.with_formatted(Formatted::new("text/plain", "forty-two"));
/// assert_eq!(delivery.payload().body(), "forty-two");
/// ```
#[derive(Clone, serde::Serialize)]
pub struct Delivery {
    run_id: RunId,
    workflow: Arc<str>,
    step: Arc<str>,
    exit: bool,
    idempotency_key: IdempotencyKey,
    value: Arc<serde_json::Value>,
    #[serde(skip)]
    attempt: u32,
    #[serde(skip)]
    formatted: Option<Arc<Formatted>>,
}

impl Delivery {
    /// A delivery of `value`, the output of step `step` of workflow `workflow` in run
    /// `run_id`, for sinks' own tests: attempt 1, not the run's exit, not formatted.
    #[must_use]
    pub fn new(
        run_id: RunId,
        workflow: &str,
        step: &str,
        key: IdempotencyKey,
        value: serde_json::Value,
    ) -> Self {
        Self {
            run_id,
            workflow: workflow.into(),
            step: step.into(),
            exit: false,
            idempotency_key: key,
            value: Arc::new(value),
            attempt: 1,
            formatted: None,
        }
    }

    pub(crate) fn from_parts(
        run_id: RunId,
        workflow: Arc<str>,
        step: Arc<str>,
        exit: bool,
        key: IdempotencyKey,
        value: Arc<serde_json::Value>,
    ) -> Self {
        Self {
            run_id,
            workflow,
            step,
            exit,
            idempotency_key: key,
            value,
            attempt: 1,
            formatted: None,
        }
    }

    /// The same delivery, marked as (or not as) the run's final result.
    #[must_use]
    pub fn with_exit(mut self, exit: bool) -> Self {
        self.exit = exit;
        self
    }

    /// The same delivery, as attempt `attempt` (from 1; 0 is taken as 1).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// The same delivery, with the value formatted.
    #[must_use]
    pub fn with_formatted(mut self, formatted: Formatted) -> Self {
        self.formatted = Some(Arc::new(formatted));
        self
    }

    /// The run.
    #[must_use]
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The workflow's name.
    #[must_use]
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The step whose output this is.
    #[must_use]
    pub fn step(&self) -> &str {
        &self.step
    }

    /// Whether the value is the run's final result (the output of its exit step).
    #[must_use]
    pub fn is_exit(&self) -> bool {
        self.exit
    }

    /// The delivery's key: the same for every attempt, and for every redelivery of the same
    /// step's output to the same sink in the same run (a resumed run included); different for
    /// every other sink, step and run. Send it along (the `Webhook` sends an `Idempotency-Key`
    /// header) so that the receiver can drop repeats.
    #[must_use]
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.idempotency_key
    }

    /// Which attempt this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The value, as JSON.
    #[must_use]
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// The value as the sink's [`Format`] made it; `None` when the sink has none.
    #[must_use]
    pub fn formatted(&self) -> Option<&Formatted> {
        self.formatted.as_deref()
    }

    /// What to write or send: the [formatted](Delivery::formatted) text when there is one,
    /// else this delivery's record as compact JSON (see above).
    #[must_use]
    pub fn payload(&self) -> Formatted {
        match &self.formatted {
            Some(formatted) => Formatted::clone(formatted),
            // A `Delivery` holds only strings, a bool and a JSON value, which always serialise.
            None => Formatted::new(
                "application/json",
                serde_json::to_string(self).unwrap_or_default(),
            ),
        }
    }
}

// The value and the formatted text are left out: they hold the workflow's data.
impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("run_id", &self.run_id)
            .field("workflow", &self.workflow)
            .field("step", &self.step)
            .field("exit", &self.exit)
            .field("idempotency_key", &self.idempotency_key)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Outputs` holds `Arc<dyn DynSink>`: the twin must stay object-safe.
    #[test]
    fn dyn_sink_is_object_safe() {
        fn _obj_safe(_: &dyn DynSink) {}
    }
}
