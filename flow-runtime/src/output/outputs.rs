use crate::output::sink::DynSink;
use crate::output::{DeadLetter, DeadLetterRecord, Delivery, DeliveryError, OutputError, Sink};
use crate::state::{CallKind, CallOutcome, CallRecord, RunId};
use crate::tool::{
    AttemptError, Bounds, DEFAULT_DEADLINE, DEFAULT_MAX_RETRY_AFTER, DEFAULT_TIMEOUT, Ending,
    IdempotencyKey, Retry, Visit,
};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tracing::Instrument as _;

/// Where a workflow's results go: sinks attached to steps and to the run's exit, how their
/// deliveries are retried, and where a value goes when a sink cannot take it.
///
/// A run delivers a step's output, once the step has succeeded, to every sink attached to
/// that step ([`on_step`](Outputs::on_step)), and the run's final result to every sink
/// attached to the exit ([`on_exit`](Outputs::on_exit)). Each sink gets its own
/// [`Delivery`], retried on transient failures as [`retry`](Outputs::retry) says, exactly as
/// a [`PolicyTool`](crate::tool::PolicyTool) retries a tool (backoff with full jitter,
/// `Retry-After` honoured, permanent errors not retried), each attempt within the
/// [`timeout`](Outputs::timeout). Every delivery leaves a [`CallRecord`] of kind
/// [`Output`](CallKind::Output) in the run's history, whose `index` is the sink's position
/// among the attachments.
///
/// A sink that fails for good does not stop the others; the value goes to the
/// [`dead_letter`](Outputs::dead_letter), when there is one, and the caller gets
/// [`OutputError::Undelivered`]. See the [module documentation](crate::output) for the
/// guarantees.
///
/// Defaults, each overridable by the method of the same name:
///
/// | setting | default |
/// |---------|---------|
/// | [`retry`](Outputs::retry) | up to 3 attempts with backoff from 200 ms (`Retry::exponential(Duration::from_millis(200))`) |
/// | [`timeout`](Outputs::timeout) of each attempt | 30 s |
/// | [`deadline`](Outputs::deadline) of a delivery, retries and waits included | 2 min |
/// | [`max_retry_after`](Outputs::max_retry_after): the longest `Retry-After` honoured | 60 s |
/// | [`dead_letter`](Outputs::dead_letter) | none |
///
/// A run refuses to start, before its first step, when a sink is attached to a step its
/// workflow does not have ([`RuntimeError::UnknownOutputStep`](crate::error::RuntimeError::UnknownOutputStep)).
///
/// Cloning is cheap and shares the sinks.
///
/// ```
/// use flow_runtime::output::{ChannelSink, DeadLetter, FileSink, Format, Outputs, Sink};
/// use flow_runtime::tool::Retry;
/// use std::time::Duration;
///
/// let (tx, _rx) = tokio::sync::mpsc::channel(16);
/// let outputs = Outputs::new()
///     .on_step("search", ChannelSink::new(tx).named("progress"))
///     .on_exit(FileSink::jsonl("bookings.jsonl"))
///     .on_exit(FileSink::jsonl("bookings.txt").formatted(Format::text(|v| v["pnr"].to_string())))
///     .retry(Retry::exponential(Duration::from_millis(100)).max_attempts(5))
///     .timeout(Duration::from_secs(10))
///     .dead_letter(DeadLetter::jsonl("undelivered.jsonl"));
/// # Ok::<(), flow_runtime::output::OutputError>(())
/// ```
#[derive(Clone)]
pub struct Outputs {
    attachments: Vec<Attachment>,
    retry: Retry,
    timeout: Option<Duration>,
    bounds: Bounds,
    dead_letter: Option<DeadLetter>,
}

#[derive(Clone)]
struct Attachment {
    target: Target,
    sink: Arc<dyn DynSink>,
}

#[derive(Clone, PartialEq, Eq)]
enum Target {
    Step(String),
    Exit,
}

impl Attachment {
    fn applies(&self, step: &str, exit: bool) -> bool {
        match &self.target {
            Target::Step(s) => s == step,
            Target::Exit => exit,
        }
    }
}

impl Default for Outputs {
    fn default() -> Self {
        Self {
            attachments: Vec::new(),
            retry: Retry::exponential(Duration::from_millis(200)),
            timeout: Some(DEFAULT_TIMEOUT),
            bounds: Bounds {
                deadline: DEFAULT_DEADLINE,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            },
            dead_letter: None,
        }
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Attached<'a>(&'a Attachment);
        impl fmt::Debug for Attached<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let name = self.0.sink.sink_name();
                match &self.0.target {
                    Target::Step(step) => write!(f, "{name:?} on step {step:?}"),
                    Target::Exit => write!(f, "{name:?} on exit"),
                }
            }
        }
        f.debug_struct("Outputs")
            .field(
                "sinks",
                &self.attachments.iter().map(Attached).collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("deadline", &self.bounds.deadline)
            .field("max_retry_after", &self.bounds.max_retry_after)
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}

impl Outputs {
    /// No sinks, and the default retry policy (see above).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers the output of step `step` to `sink`, each time the step succeeds.
    #[must_use]
    pub fn on_step(mut self, step: impl Into<String>, sink: impl Sink) -> Self {
        self.attachments.push(Attachment {
            target: Target::Step(step.into()),
            sink: Arc::new(sink),
        });
        self
    }

    /// Delivers the run's final result (the output of whichever exit step ends it) to `sink`.
    #[must_use]
    pub fn on_exit(mut self, sink: impl Sink) -> Self {
        self.attachments.push(Attachment {
            target: Target::Exit,
            sink: Arc::new(sink),
        });
        self
    }

    /// How deliveries retry transient failures and timeouts: the same [`Retry`] as tools use.
    /// `Retry::none()` makes one attempt.
    #[must_use]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Each attempt may take at most `timeout` (30 s by default; `Duration::MAX` for no
    /// limit); one that takes longer is abandoned (its future dropped) and counts as a
    /// transient failure.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Each delivery to one sink, its attempts and waits included, may take at most
    /// `deadline` (2 min by default; `Duration::MAX` for no limit). An attempt still going
    /// when it passes is abandoned ([`DeliveryError::DeadlineExceeded`]); a retry whose wait
    /// would end past it is not made.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.bounds.deadline = deadline;
        self
    }

    /// The longest wait a receiver may ask for with `Retry-After` (60 s by default;
    /// `Duration::MAX` for no limit). A receiver that asks for longer is not waited for: the
    /// delivery fails at once with [`DeliveryError::RetryAfterTooLong`] (and goes to the dead
    /// letter), rather than holding the run for hours.
    #[must_use]
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.bounds.max_retry_after = max;
        self
    }

    /// Where values go when a sink cannot take them. Without one, such a value is only in the
    /// error the caller gets (as the sinks that do not have it) and the run's history.
    #[must_use]
    pub fn dead_letter(mut self, dead_letter: DeadLetter) -> Self {
        self.dead_letter = Some(dead_letter);
        self
    }

    /// Whether no sink is attached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.attachments.is_empty()
    }

    /// Whether a sink is attached to step `step`, or to the exit when `exit` (the step ends
    /// the run): whether its output has anywhere to go.
    #[must_use]
    pub(crate) fn is_attached(&self, step: &str, exit: bool) -> bool {
        self.attachments.iter().any(|a| a.applies(step, exit))
    }

    /// The steps that sinks are attached to but that are not among `steps` (a workflow's step
    /// names), once each, in the order they were attached: most likely typos, which a run
    /// refuses up front rather than never delivering to those sinks.
    #[must_use]
    pub(crate) fn unknown_steps(&self, steps: &[&str]) -> Vec<String> {
        let mut unknown: Vec<String> = Vec::new();
        for attachment in &self.attachments {
            if let Target::Step(step) = &attachment.target
                && !steps.contains(&step.as_str())
                && !unknown.contains(step)
            {
                unknown.push(step.clone());
            }
        }
        unknown
    }

    /// Delivers `value`, the output of visit `visit` of step `step` of workflow `workflow` in
    /// run `run_id`, to the sinks attached to that step, and to those attached to the exit when
    /// `exit`: what a run does after each step. Pushes one [`CallRecord`] per sink to
    /// `records`, failed ones included.
    ///
    /// The idempotency key of each delivery is derived from the run, the step, its visit and
    /// the sink's position among the attachments: delivering the same visit's output again in
    /// the same run repeats it.
    ///
    /// # Errors
    ///
    /// [`OutputError::Undelivered`] when some sink did not take it, even with retries (the
    /// others did); [`OutputError::DeadLetter`] when, on top of that, the dead letter could
    /// not store it.
    #[allow(
        clippy::too_many_arguments,
        reason = "crate-private; every argument is needed"
    )]
    pub(crate) async fn deliver(
        &self,
        run_id: &RunId,
        workflow: &str,
        step: &str,
        visit: Visit,
        exit: bool,
        value: &serde_json::Value,
        records: &mut Vec<CallRecord>,
    ) -> Result<(), OutputError> {
        let targets: Vec<(u32, &Attachment)> = self
            .attachments
            .iter()
            .enumerate()
            .filter(|(_, a)| a.applies(step, exit))
            .map(|(i, a)| (u32::try_from(i).unwrap_or(u32::MAX), a))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }

        let workflow_name: Arc<str> = workflow.into();
        let step_name: Arc<str> = step.into();
        let value = Arc::new(value.clone());
        let deliveries: Vec<Delivery> = targets
            .iter()
            .map(|&(index, _)| {
                Delivery::from_parts(
                    run_id.clone(),
                    Arc::clone(&workflow_name),
                    Arc::clone(&step_name),
                    exit,
                    IdempotencyKey::for_output(run_id, step, visit, index),
                    Arc::clone(&value),
                )
            })
            .collect();
        // Sinks are independent: a slow webhook does not hold up the file.
        let outcomes = futures_util::future::join_all(
            targets
                .iter()
                .zip(&deliveries)
                .map(|(&(_, a), delivery)| self.attempts(&*a.sink, delivery)),
        )
        .await;

        let mut failures = Vec::new();
        for ((&(index, attachment), delivery), outcome) in
            targets.iter().zip(deliveries).zip(outcomes)
        {
            let name = attachment.sink.sink_name();
            records.push(
                CallRecord::new(
                    CallKind::Output,
                    name,
                    step,
                    index,
                    outcome.attempts,
                    outcome.duration,
                    match &outcome.result {
                        Ok(()) => CallOutcome::Ok,
                        Err(e) => CallOutcome::Failed(e.describe()),
                    },
                )
                .with_visit(visit),
            );
            if let Err(error) = outcome.result {
                tracing::error!(
                    run_id = %run_id,
                    workflow,
                    step,
                    sink = name,
                    error = %error.describe(),
                    "output not delivered",
                );
                failures.push((delivery, error));
            }
        }
        self.settle(run_id, workflow, step, failures)
    }

    /// Writes the failed deliveries (if any) to the dead letter, and makes the caller's error.
    fn settle(
        &self,
        run_id: &RunId,
        workflow: &str,
        step: &str,
        failures: Vec<(Delivery, DeliveryError)>,
    ) -> Result<(), OutputError> {
        let sinks: Vec<String> = failures.iter().map(|(_, e)| e.sink().to_owned()).collect();
        if let Some(dead_letter) = &self.dead_letter {
            let failed_at_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let mut unstored = Vec::new();
            let mut last_io_error = None;
            for (delivery, error) in &failures {
                let record = DeadLetterRecord {
                    run_id: run_id.clone(),
                    workflow: workflow.to_owned(),
                    step: step.to_owned(),
                    exit: delivery.is_exit(),
                    sink: error.sink().to_owned(),
                    idempotency_key: delivery.idempotency_key().clone(),
                    attempts: error.attempts(),
                    error: error.describe(),
                    failed_at_ms,
                    value: delivery.value().clone(),
                };
                if let Err(e) = dead_letter.write(record) {
                    tracing::error!(
                        run_id = %run_id,
                        workflow,
                        step,
                        sink = error.sink(),
                        dead_letter = %dead_letter.location(),
                        error = %e,
                        "output not delivered and not dead-lettered: it is stored nowhere",
                    );
                    unstored.push(error.sink().to_owned());
                    last_io_error = Some(e);
                }
            }
            if let Some(source) = last_io_error {
                return Err(OutputError::DeadLetter {
                    run_id: run_id.clone(),
                    workflow: workflow.to_owned(),
                    step: step.to_owned(),
                    sinks: unstored,
                    dead_letter: dead_letter.location(),
                    source,
                });
            }
        }
        match failures.into_iter().next() {
            None => Ok(()),
            Some((_, source)) => Err(OutputError::Undelivered {
                run_id: run_id.clone(),
                workflow: workflow.to_owned(),
                step: step.to_owned(),
                sinks,
                dead_lettered: self.dead_letter.is_some(),
                source: Box::new(source),
            }),
        }
    }

    /// Delivers to one sink, retrying as the policy says, in an `output` tracing span.
    async fn attempts(&self, sink: &dyn DynSink, delivery: &Delivery) -> Attempted {
        let span = crate::driver::trace::info_span_if_traced!(
            "output",
            sink = sink.sink_name(),
            step = delivery.step(),
            idempotency_key = %delivery.idempotency_key(),
            attempt = tracing::field::Empty,
        );
        let started = Instant::now();
        let (attempts, result) = self
            .retry_loop(sink, delivery, &span)
            .instrument(span.clone())
            .await;
        Attempted {
            attempts,
            duration: started.elapsed(),
            result,
        }
    }

    /// The retry loop of a [`PolicyTool`](crate::tool::PolicyTool), around one sink.
    async fn retry_loop(
        &self,
        sink: &dyn DynSink,
        delivery: &Delivery,
        span: &tracing::Span,
    ) -> (u32, Result<(), DeliveryError>) {
        let (attempts, ended) = self
            .retry
            .drive(self.bounds, span, |attempt| {
                let this = delivery.clone().with_attempt(attempt);
                async move { self.attempt(sink, &this).await }
            })
            .await;
        let sink = sink.sink_name().to_owned();
        let result = ended.map_err(|ending| match ending {
            Ending::Rejected(source) => DeliveryError::Rejected {
                sink,
                attempt: attempts,
                source,
            },
            Ending::GaveUp(source) => DeliveryError::GaveUp {
                sink,
                attempts,
                source,
            },
            Ending::TimedOut(timeout) => DeliveryError::TimedOut {
                sink,
                attempts,
                timeout,
            },
            Ending::DeadlineExceeded(deadline) => DeliveryError::DeadlineExceeded {
                sink,
                attempts,
                deadline,
            },
            Ending::RetryAfterTooLong { asked, max, error } => DeliveryError::RetryAfterTooLong {
                sink,
                attempts,
                asked,
                max,
                source: error,
            },
        });
        (attempts, result)
    }

    /// One attempt, within the timeout.
    async fn attempt(&self, sink: &dyn DynSink, delivery: &Delivery) -> Result<(), AttemptError> {
        let call = sink.deliver_boxed(delivery);
        match self.timeout {
            None => call.await.map_err(AttemptError::Tool),
            Some(timeout) => match tokio::time::timeout(timeout, call).await {
                Ok(result) => result.map_err(AttemptError::Tool),
                Err(_) => Err(AttemptError::TimedOut(timeout)),
            },
        }
    }
}

/// How one sink's delivery went.
struct Attempted {
    attempts: u32,
    duration: Duration,
    result: Result<(), DeliveryError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::ChannelSink;

    #[tokio::test]
    async fn deliver_records_every_sink_and_keys_stay_stable() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let (closed, rx_closed) = tokio::sync::mpsc::channel(1);
        drop(rx_closed);
        let dead_letter = DeadLetter::memory();
        let outputs = Outputs::new()
            .on_step("book", ChannelSink::new(tx.clone()).named("step"))
            .on_exit(ChannelSink::new(closed).named("gone"))
            .on_exit(ChannelSink::new(tx).named("exit"))
            .dead_letter(dead_letter.clone());
        let run = RunId::from("run-1");
        let value = serde_json::json!({ "pnr": "X7K2QP" });

        // The step's third visit (a loop's third turn).
        let visit = Visit::after(2);
        let mut records = Vec::new();
        let err = outputs
            .deliver(&run, "trip", "book", visit, true, &value, &mut records)
            .await
            .unwrap_err();
        let OutputError::Undelivered {
            sinks,
            dead_lettered,
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(sinks, ["gone"]);
        assert!(dead_lettered);

        let names: Vec<_> = records.iter().map(|r| (r.name.as_str(), r.index)).collect();
        assert_eq!(names, [("step", 0), ("gone", 1), ("exit", 2)]);
        assert!(records.iter().all(|r| r.kind == CallKind::Output));
        assert_eq!(records[0].outcome, CallOutcome::Ok);
        assert!(matches!(records[1].outcome, CallOutcome::Failed(_)));

        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert_ne!(first.idempotency_key(), second.idempotency_key());
        // Not the key of the step's first tool call.
        assert_ne!(
            first.idempotency_key(),
            &IdempotencyKey::new(&run, "book", visit, 0)
        );
        // Each record names its visit and gives back its delivery's key.
        assert!(records.iter().all(|r| r.visit == visit));
        assert_eq!(&records[0].idempotency_key(&run), first.idempotency_key());
        assert_eq!(&records[2].idempotency_key(&run), second.idempotency_key());

        // Delivered again (a resumed run): the same keys.
        let mut again = Vec::new();
        outputs
            .deliver(&run, "trip", "book", visit, false, &value, &mut again)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            rx.recv().await.unwrap().idempotency_key(),
            first.idempotency_key()
        );
        assert_eq!(
            dead_letter.records().unwrap()[0].idempotency_key,
            records[1].idempotency_key(&run)
        );
    }

    #[test]
    fn unknown_steps_are_the_attachments_the_workflow_lacks() {
        let sink = || ChannelSink::new(tokio::sync::mpsc::channel(1).0);
        let outputs = Outputs::new()
            .on_step("serach", sink())
            .on_step("book", sink())
            .on_step("serach", sink())
            .on_step("pay", sink())
            .on_exit(sink());

        assert_eq!(
            outputs.unknown_steps(&["search", "book"]),
            ["serach", "pay"]
        );
        assert!(outputs.unknown_steps(&["serach", "book", "pay"]).is_empty());
        assert!(Outputs::new().unknown_steps(&[]).is_empty());
    }

    #[test]
    fn attached_means_to_the_step_or_to_the_exit_it_ends() {
        let sink = || ChannelSink::new(tokio::sync::mpsc::channel(1).0);
        let outputs = Outputs::new().on_step("search", sink()).on_exit(sink());

        assert!(outputs.is_attached("search", false));
        assert!(!outputs.is_attached("book", false));
        assert!(outputs.is_attached("book", true));
    }

    #[tokio::test]
    async fn nothing_attached_delivers_nothing() {
        let outputs =
            Outputs::new().on_step("book", ChannelSink::new(tokio::sync::mpsc::channel(1).0));
        let mut records = Vec::new();
        outputs
            .deliver(
                &RunId::from("r"),
                "trip",
                "search",
                Visit::FIRST,
                true,
                &1.into(),
                &mut records,
            )
            .await
            .unwrap();
        assert!(records.is_empty());
    }
}
