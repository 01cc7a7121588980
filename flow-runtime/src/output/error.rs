use crate::state::RunId;
use crate::tool::ToolError;
use std::time::Duration;

/// Output handling failed: configuring it (a template, a URL), or delivering a value.
///
/// No message holds the value being delivered: it is the workflow's data, which may hold
/// anything. A value that was not delivered is in the [dead letter](crate::output::DeadLetter)
/// when one is configured, and the message says whether it is.
///
/// ```
/// use flow_runtime::output::{ChannelSink, DeadLetter, DeliveryError, OutputError, Outputs};
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
/// # async fn main() {
/// // A channel whose receiver is gone: a permanent failure.
/// let (tx, rx) = tokio::sync::mpsc::channel(1);
/// drop(rx);
/// let dead_letter = DeadLetter::memory();
/// let outputs = Outputs::new()
///     .on_exit(ChannelSink::new(tx))
///     .dead_letter(dead_letter.clone());
///
/// let ctx = Ctx::builder(()).run_id("run-1").outputs(outputs).build();
/// let err = trip::Workflow::run(&ctx, "X7K2QP".into()).await.unwrap_err();
/// let trip::FlowError::Runtime(RuntimeError::Output(err)) = err else { unreachable!() };
/// assert_eq!(
///     err.to_string(),
///     "run `run-1` of workflow `trip`: the output of step `book` was not delivered to sink \
///      `channel`; it is kept in the dead letter"
/// );
/// let OutputError::Undelivered { source, .. } = &err else { unreachable!() };
/// assert!(matches!(**source, DeliveryError::Rejected { attempt: 1, .. }));
/// assert_eq!(dead_letter.records().unwrap()[0].value, "X7K2QP");
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// A value could not be delivered to one or more sinks, even with retries. The other sinks
    /// have it. When a [dead letter](crate::output::Outputs::dead_letter) is configured, it
    /// holds one record per failed sink, with the value.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: the output of step `{step}` was not delivered to {}; {}",
        sink_list(sinks),
        if *dead_lettered { "it is kept in the dead letter" } else { "no dead letter is configured" }
    )]
    Undelivered {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: String,
        /// The step whose output it is.
        step: String,
        /// The names of the sinks that do not have it, in the order they were attached.
        sinks: Vec<String>,
        /// Whether the dead letter holds it.
        dead_lettered: bool,
        /// Why the first of `sinks` failed (every sink's failure is in its
        /// [`CallRecord`](crate::state::CallRecord) and dead-letter record).
        #[source]
        source: Box<DeliveryError>,
    },
    /// A value could not be delivered to one or more sinks, and writing it to the dead letter
    /// failed as well: it is stored nowhere. The caller still has it.
    #[error(
        "run `{run_id}` of workflow `{workflow}`: the output of step `{step}` was not delivered to {}, \
         and could not be written to dead letter `{dead_letter}` either: it is not stored anywhere",
        sink_list(sinks)
    )]
    DeadLetter {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: String,
        /// The step whose output it is.
        step: String,
        /// The names of the sinks that do not have it.
        sinks: Vec<String>,
        /// Where the dead letter is (its file, or "memory").
        dead_letter: String,
        /// Why writing the dead-letter record failed.
        #[source]
        source: std::io::Error,
    },
    /// The value to send could not be turned into JSON (its `Serialize` impl failed).
    #[error(
        "run `{run_id}` of workflow `{workflow}`: the output of step `{step}` could not be serialised"
    )]
    Serialize {
        /// The run.
        run_id: RunId,
        /// The workflow's name.
        workflow: String,
        /// The step whose output it is.
        step: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A [`Format::template`](crate::output::Format::template) does not parse.
    #[cfg(feature = "templates")]
    #[cfg_attr(docsrs, doc(cfg(feature = "templates")))]
    #[error("invalid output template: {reason}")]
    Template {
        /// minijinja's description, with the line.
        reason: String,
    },
    /// A template could not render a value (it prints a variable the value does not have).
    #[cfg(feature = "templates")]
    #[cfg_attr(docsrs, doc(cfg(feature = "templates")))]
    #[error("the output template could not render the value: {reason}")]
    Render {
        /// minijinja's description, with the line.
        reason: String,
    },
    /// A webhook URL does not parse, or is not `http` or `https`. The URL is left out of the
    /// message: webhook URLs often hold a token.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    #[error("invalid webhook URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
}

/// "sink `a`" or "sinks `a`, `b`".
fn sink_list(sinks: &[String]) -> String {
    let names: Vec<String> = sinks.iter().map(|s| format!("`{s}`")).collect();
    match names.len() {
        1 => format!("sink {}", names[0]),
        _ => format!("sinks {}", names.join(", ")),
    }
}

/// Why one sink did not get a value: its own error once the retry policy has given up on it,
/// or a timeout. The same cases as [`CallError`](crate::tool::CallError) for tools.
///
/// ```
/// use flow_runtime::output::DeliveryError;
/// use flow_runtime::tool::ToolError;
///
/// let err = DeliveryError::GaveUp {
///     sink: "audit".into(),
///     attempts: 3,
///     source: ToolError::transient("webhook answered 503 Service Unavailable"),
/// };
/// assert_eq!(err.to_string(), "sink `audit` still failed after 3 attempt(s); giving up");
/// assert_eq!(err.attempts(), 3);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The sink failed with a [permanent](ToolError::permanent) error: not retried.
    #[error("sink `{sink}` failed with a permanent error on attempt {attempt}; not retried")]
    Rejected {
        /// The sink's name.
        sink: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The sink's error.
        #[source]
        source: ToolError,
    },
    /// The sink kept failing with [transient](ToolError::transient) errors until the retry
    /// policy ran out.
    #[error("sink `{sink}` still failed after {attempts} attempt(s); giving up")]
    GaveUp {
        /// The sink's name.
        sink: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: ToolError,
    },
    /// The last attempt took longer than the per-attempt
    /// [timeout](crate::output::Outputs::timeout), and no retry was left.
    #[error("sink `{sink}` timed out after {timeout:?} on attempt {attempts}; giving up")]
    TimedOut {
        /// The sink's name.
        sink: String,
        /// How many attempts were made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// The delivery's [deadline](crate::output::Outputs::deadline) passed while an attempt was
    /// still going: the attempt was abandoned.
    #[error(
        "sink `{sink}` did not take the value within the delivery deadline of {deadline:?} \
         (attempt {attempts} was abandoned); raise it with `Outputs::deadline` if the sink is slow"
    )]
    DeadlineExceeded {
        /// The sink's name.
        sink: String,
        /// How many attempts were made, the abandoned one included.
        attempts: u32,
        /// The deadline.
        deadline: Duration,
    },
    /// The sink failed with a transient error whose receiver asked to wait (`Retry-After`)
    /// longer than [`Outputs::max_retry_after`](crate::output::Outputs::max_retry_after)
    /// allows: not retried.
    #[error(
        "sink `{sink}` failed on attempt {attempts} and asked to wait {asked:?} before \
         retrying, longer than the {max:?} honoured; giving up (raise the limit with \
         `Outputs::max_retry_after`)"
    )]
    RetryAfterTooLong {
        /// The sink's name.
        sink: String,
        /// How many attempts were made.
        attempts: u32,
        /// The wait the receiver asked for.
        asked: Duration,
        /// The longest wait honoured.
        max: Duration,
        /// The last attempt's error.
        #[source]
        source: ToolError,
    },
}

impl DeliveryError {
    /// The name of the sink that failed.
    #[must_use]
    pub fn sink(&self) -> &str {
        match self {
            Self::Rejected { sink, .. }
            | Self::GaveUp { sink, .. }
            | Self::TimedOut { sink, .. }
            | Self::DeadlineExceeded { sink, .. }
            | Self::RetryAfterTooLong { sink, .. } => sink,
        }
    }

    /// How many attempts were made.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Rejected { attempt, .. } => *attempt,
            Self::GaveUp { attempts, .. }
            | Self::TimedOut { attempts, .. }
            | Self::DeadlineExceeded { attempts, .. }
            | Self::RetryAfterTooLong { attempts, .. } => *attempts,
        }
    }

    /// The message with its causes, for a history record: "sink `a` still failed after 3
    /// attempt(s); giving up: webhook answered 503 Service Unavailable".
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Rejected { source, .. }
            | Self::GaveUp { source, .. }
            | Self::RetryAfterTooLong { source, .. } => format!("{self}: {source}"),
            Self::TimedOut { .. } | Self::DeadlineExceeded { .. } => self.to_string(),
        }
    }
}
