//! Output sinks against real receivers: a webhook on loopback (axum) that fails as told, files
//! in a temporary directory, tokio channels. Retries (and `Retry-After`), permanent failures,
//! timeouts, dead letters, idempotency keys, formats, and secrets that stay out of printouts.
//!
//! Every delivery comes from a run, as in a user's program: the one step of workflow `trip`,
//! `book`, ends its run with the value it was given.
//!
//! Every test is fast: backoffs are a millisecond, and the one test about `Retry-After` proves
//! it is honoured by a backoff that would otherwise take minutes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_runtime::output::{
    ChannelSink, DeadLetter, Delivery, DeliveryError, FileSink, Format, OutputError, Outputs, Sink,
    Webhook,
};
use flow_runtime::prelude::{Ctx, RuntimeError, workflow};
use flow_runtime::state::{CallKind, CallOutcome, CallRecord, RunId};
use flow_runtime::tool::{Auth, Credential, Retry};
use flow_tests::http::{header_text, serve};
use flow_tests::quick_retry;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The workflows whose outputs are delivered.

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

/// One step, `book`, which ends the run with its input.
#[workflow]
pub mod trip {
    use super::*;

    #[step(entry, exit)]
    pub async fn book(booking: Value) -> Result<Value, Failed> {
        Ok(booking)
    }
}

/// `book` between two steps: it does not end the run.
#[workflow]
pub mod hold {
    use super::*;

    #[step(entry)]
    pub async fn search(booking: Value) -> Result<Value, Failed> {
        Ok(booking)
    }

    #[step(after = search)]
    pub async fn book(booking: Value) -> Result<Value, Failed> {
        Ok(booking)
    }

    #[step(after = book, exit)]
    pub async fn confirm(booking: Value) -> Result<Value, Failed> {
        Ok(booking)
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver.

/// How the receiver answers.
#[derive(Clone, Copy)]
struct Behaviour {
    /// The first `fail_first` requests get `fail_status`; later ones 200.
    fail_first: usize,
    fail_status: StatusCode,
    /// Sent with every failure.
    retry_after: Option<&'static str>,
    /// How long every request takes to answer.
    sleep: Duration,
}

impl Behaviour {
    fn ok() -> Self {
        Self {
            fail_first: 0,
            fail_status: StatusCode::OK,
            retry_after: None,
            sleep: Duration::ZERO,
        }
    }

    fn failing(fail_first: usize, fail_status: u16) -> Self {
        Self {
            fail_first,
            fail_status: StatusCode::from_u16(fail_status).unwrap(),
            ..Self::ok()
        }
    }
}

/// One request, as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    idempotency_key: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

struct Receiver {
    behaviour: Behaviour,
    seen: Mutex<Vec<Seen>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral loopback port; returns it and its URL, whose path
    /// holds a token (as chat webhooks' do).
    async fn start(behaviour: Behaviour) -> (Arc<Self>, String) {
        let receiver = Arc::new(Self {
            behaviour,
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/hooks/{token}", axum::routing::post(answer))
            .with_state(Arc::clone(&receiver));
        let url = format!("{}/hooks/p4th-t0ken", serve(app).await);
        (receiver, url)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| header_text(&headers, name);
    let index = {
        let mut seen = receiver.seen.lock().unwrap();
        seen.push(Seen {
            idempotency_key: text("idempotency-key"),
            content_type: text("content-type"),
            authorization: text("authorization"),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        seen.len() - 1
    };
    tokio::time::sleep(receiver.behaviour.sleep).await;
    let b = receiver.behaviour;
    if index < b.fail_first {
        let mut response = (b.fail_status, "no").into_response();
        if let Some(wait) = b.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, wait.parse().unwrap());
        }
        return response;
    }
    StatusCode::OK.into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn booking() -> Value {
    json!({ "pnr": "X7K2QP", "name": "Ada" })
}

/// The context of run `run`, with these outputs.
fn ctx(outputs: &Outputs, run: &str) -> Ctx {
    Ctx::builder(())
        .run_id(run)
        .outputs(outputs.clone())
        .build()
}

/// Runs workflow `trip` as run `run`, so that its step `book` ends the run with `value`: what
/// delivering it came to, and the run's records of its deliveries.
async fn send(
    outputs: &Outputs,
    run: &str,
    value: &Value,
) -> (Result<(), OutputError>, Vec<CallRecord>) {
    let ctx = ctx(outputs, run);
    let result = match trip::Workflow::run(&ctx, value.clone()).await {
        Ok(output) => {
            assert_eq!(&output, value);
            Ok(())
        }
        Err(trip::FlowError::Runtime(RuntimeError::Output(error))) => Err(error),
        Err(error) => panic!("not a delivery error: {error:?}"),
    };
    (result, ctx.calls())
}

fn closed_channel() -> ChannelSink {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    ChannelSink::new(tx)
}

// ---------------------------------------------------------------------------------------------
// Webhook: retries, permanent failures, dead letters.

#[tokio::test]
async fn a_503_with_retry_after_is_retried_until_delivered_with_one_idempotency_key() {
    let (receiver, url) = Receiver::start(Behaviour {
        retry_after: Some("0"),
        ..Behaviour::failing(2, 503)
    })
    .await;
    // Without `Retry-After: 0` each retry would wait up to 1000 s: only honouring it finishes
    // within the test's 5 s.
    let outputs = Outputs::new().on_exit(Webhook::new(&url).unwrap()).retry(
        Retry::exponential(Duration::from_secs(1000))
            .max_delay(Duration::from_secs(1000))
            .max_attempts(5),
    );

    let (result, records) =
        tokio::time::timeout(Duration::from_secs(5), send(&outputs, "run-1", &booking()))
            .await
            .expect("Retry-After: 0 was not honoured");
    result.unwrap();

    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.kind, CallKind::Output);
    assert_eq!(
        record.name,
        format!("webhook {}", &url[..url.find("/hooks").unwrap()])
    );
    assert_eq!(record.step, "book");
    assert_eq!(record.attempts, 3);
    assert_eq!(record.outcome, CallOutcome::Ok);

    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    let key = seen[0].idempotency_key.clone().unwrap();
    assert_eq!(key.len(), 36);
    assert!(
        seen.iter()
            .all(|s| s.idempotency_key.as_deref() == Some(key.as_str()))
    );
    // Unformatted: the delivery record, as JSON.
    assert_eq!(seen[2].content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&seen[2].body).unwrap();
    assert_eq!(
        body,
        json!({
            "run_id": "run-1", "workflow": "trip", "step": "book", "exit": true,
            "idempotency_key": key, "value": booking(),
        })
    );
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_recorded_dead_lettered_and_surfaced() {
    let (receiver, url) = Receiver::start(Behaviour::failing(usize::MAX, 500)).await;
    let dir = tempfile::tempdir().unwrap();
    let dead_letter = DeadLetter::jsonl(dir.path().join("dead.jsonl"));
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&url).unwrap())
        .retry(quick_retry(3))
        .dead_letter(dead_letter.clone());

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    // The caller sees the error: which run, step and sink, and where the value is.
    let err = result.unwrap_err();
    let message = err.to_string();
    let OutputError::Undelivered {
        run_id,
        step,
        sinks,
        dead_lettered,
        source,
        ..
    } = err
    else {
        panic!("expected Undelivered, got {err:?}");
    };
    assert_eq!((run_id.as_str(), step.as_str()), ("run-1", "book"));
    assert_eq!(sinks, [records[0].name.clone()]);
    assert!(dead_lettered);
    assert!(matches!(*source, DeliveryError::GaveUp { attempts: 3, .. }));
    assert_eq!(
        message,
        format!(
            "run `run-1` of workflow `trip`: the output of step `book` was not delivered to \
             sink `{}`; it is kept in the dead letter",
            sinks[0]
        )
    );
    assert!(!message.contains("X7K2QP"));

    // Retried, and recorded in the history.
    assert_eq!(receiver.seen().len(), 3);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].attempts, 3);
    let CallOutcome::Failed(why) = &records[0].outcome else {
        panic!("{:?}", records[0]);
    };
    assert!(
        why.contains("webhook answered 500 Internal Server Error"),
        "{why}"
    );

    // The result is still there, read back from the file.
    let dead = dead_letter.records().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value, booking());
    assert_eq!(dead[0].run_id, RunId::from("run-1"));
    assert_eq!(
        (dead[0].workflow.as_str(), dead[0].step.as_str()),
        ("trip", "book")
    );
    assert!(dead[0].exit);
    assert_eq!(dead[0].sink, sinks[0]);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].error, *why);
    assert_eq!(
        Some(dead[0].idempotency_key.as_str()),
        receiver.seen()[0].idempotency_key.as_deref()
    );
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let (receiver, url) = Receiver::start(Behaviour::failing(usize::MAX, 400)).await;
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&url).unwrap())
        .retry(quick_retry(5));

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let err = result.unwrap_err();
    assert!(
        err.to_string().ends_with("; no dead letter is configured"),
        "{err}"
    );
    let OutputError::Undelivered {
        source,
        dead_lettered: false,
        ..
    } = err
    else {
        panic!("{err:?}");
    };
    let DeliveryError::Rejected {
        attempt: 1, source, ..
    } = *source
    else {
        panic!("{source:?}");
    };
    // The start of the body is in the message, as in `HttpJson`'s errors.
    assert_eq!(source.to_string(), "webhook answered 400 Bad Request: no");
    assert_eq!(receiver.seen().len(), 1);
    assert_eq!(records[0].attempts, 1);
}

#[tokio::test]
async fn an_unreachable_webhook_is_retried_then_given_up() {
    // A port nobody listens on any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&url).unwrap())
        .retry(quick_retry(2));

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    let DeliveryError::GaveUp {
        attempts: 2,
        source,
        ..
    } = *source
    else {
        panic!("{source:?}");
    };
    assert_eq!(source.to_string(), "the webhook could not be reached");
    assert_eq!(records[0].attempts, 2);
}

#[tokio::test]
async fn a_slow_webhook_times_out_on_every_attempt() {
    let (receiver, url) = Receiver::start(Behaviour {
        sleep: Duration::from_secs(5),
        ..Behaviour::ok()
    })
    .await;
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&url).unwrap())
        .retry(quick_retry(2))
        .timeout(Duration::from_millis(50));

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    assert!(
        matches!(*source, DeliveryError::TimedOut { attempts: 2, timeout, .. } if timeout == Duration::from_millis(50)),
        "{source:?}"
    );
    assert_eq!(receiver.seen().len(), 2);
    assert_eq!(records[0].attempts, 2);
}

#[tokio::test]
async fn a_formatted_webhook_sends_the_text_and_the_credential_which_never_prints() {
    let (receiver, url) = Receiver::start(Behaviour::ok()).await;
    let hook = Webhook::new(&url)
        .unwrap()
        .auth(Auth::bearer(Credential::new("s3cret-t0ken")))
        .formatted(Format::template("Booked {{ pnr }} for {{ name }}.").unwrap());
    let outputs = Outputs::new().on_exit(hook);

    let (result, _) = send(&outputs, "run-1", &booking()).await;
    result.unwrap();

    let seen = &receiver.seen()[0];
    assert_eq!(seen.body, "Booked X7K2QP for Ada.");
    assert_eq!(
        seen.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(seen.authorization.as_deref(), Some("Bearer s3cret-t0ken"));

    // Neither the credential nor the URL's path (which holds a token) is ever printed.
    let printed = format!("{outputs:?}");
    assert!(printed.contains("webhook http://127.0.0.1:"), "{printed}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(!printed.contains("p4th-t0ken"), "{printed}");
}

/// A receiver that redirects (307) to another origin: the webhook does not follow, so the
/// other host never sees the API key of its custom header (reqwest's default policy would
/// have sent it along, stripping only `Authorization` and `Cookie`); the delivery fails for
/// good, and the 3xx says why. A redirect within the origin is still followed.
#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed_with_the_api_key() {
    // B, another origin: records the `x-api-key` of each request it gets.
    let keys: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = Arc::clone(&keys);
    let b = serve(axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock()
                .unwrap()
                .push(header_text(&headers, "x-api-key"));
            StatusCode::OK
        }
    }))
    .await;
    // A: `/away` redirects to B, `/here` to A's own `/ok`, which records the key it gets.
    let own: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let at_a = Arc::clone(&own);
    let target = format!("{b}/hook");
    let a = serve(
        axum::Router::new()
            .route(
                "/away",
                axum::routing::post(move || {
                    let target = target.clone();
                    async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, target)]) }
                }),
            )
            .route(
                "/here",
                axum::routing::post(|| async {
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/ok")])
                }),
            )
            .route(
                "/ok",
                axum::routing::post(move |headers: HeaderMap| {
                    let at_a = Arc::clone(&at_a);
                    async move {
                        at_a.lock()
                            .unwrap()
                            .push(header_text(&headers, "x-api-key"));
                        StatusCode::OK
                    }
                }),
            ),
    )
    .await;
    let delivery = Delivery::new(
        RunId::from("run-1"),
        "trip",
        "book",
        "k-1".into(),
        booking(),
    );
    let hook = |path: &str| {
        Webhook::new(&format!("{a}{path}"))
            .unwrap()
            .auth(Auth::api_key("x-api-key", Credential::new("k3y-s3cret")))
    };

    let err = hook("/away").deliver(&delivery).await.unwrap_err();
    assert!(err.to_string().contains("307"), "{err}");
    assert!(keys.lock().unwrap().is_empty(), "B was called");

    hook("/here").deliver(&delivery).await.unwrap();
    assert_eq!(*own.lock().unwrap(), [Some("k3y-s3cret".to_owned())]);
}

/// A receiver that moves its endpoint with a 301, 302 or 303 (`/hook` to `/hook/`, as many
/// servers do for a missing slash), and answers a `GET` there with a page. Following such a
/// redirect turns the POST into a GET without its body (RFC 9110, and reqwest does so): the
/// delivery counted as done, with the value never sent, and nothing in the dead letter. Only a
/// 307 or 308, which keep the method and body, may be followed.
#[tokio::test]
async fn a_redirect_that_would_drop_the_body_is_not_followed_and_the_value_is_dead_lettered() {
    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
    ] {
        let seen: Arc<Mutex<Vec<(String, usize)>>> = Arc::default();
        let at_slash = Arc::clone(&seen);
        let origin = serve(
            axum::Router::new()
                .route(
                    "/hook",
                    axum::routing::post(
                        move || async move { (status, [(header::LOCATION, "/hook/")]) },
                    ),
                )
                .route(
                    "/hook/",
                    axum::routing::any(move |method: axum::http::Method, body: Bytes| {
                        let at_slash = Arc::clone(&at_slash);
                        async move {
                            at_slash
                                .lock()
                                .unwrap()
                                .push((method.to_string(), body.len()));
                            (StatusCode::OK, "<html>webhook receiver</html>")
                        }
                    }),
                ),
        )
        .await;
        let dead_letter = DeadLetter::memory();
        let outputs = Outputs::new()
            .on_exit(Webhook::new(&format!("{origin}/hook")).unwrap())
            .retry(quick_retry(2))
            .dead_letter(dead_letter.clone());

        let (result, _) = send(&outputs, "run-1", &booking()).await;

        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.is_empty(),
            "{status}: the redirect was followed: {seen:?}"
        );
        let Err(OutputError::Undelivered { source, .. }) = result else {
            panic!("{status}: {result:?}");
        };
        assert!(
            matches!(*source, DeliveryError::Rejected { attempt: 1, .. }),
            "{status}: {source:?}"
        );
        assert!(source.to_string().contains("permanent"), "{source}");
        let dead = dead_letter.records().unwrap();
        assert_eq!(dead.len(), 1, "{status}");
        assert!(dead[0].error.contains(status.as_str()), "{}", dead[0].error);
        assert_eq!(dead[0].value, booking());
    }
}

#[tokio::test]
async fn a_credential_that_cannot_be_loaded_fails_without_calling() {
    let (receiver, url) = Receiver::start(Behaviour::ok()).await;
    let hook = Webhook::new(&url)
        .unwrap()
        .auth(Auth::bearer(Credential::from_env(
            "FLOW_TEST_SURELY_UNSET_TOKEN",
        )));
    let outputs = Outputs::new().on_exit(hook).retry(quick_retry(3));

    let (result, _) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    let DeliveryError::Rejected {
        attempt: 1, source, ..
    } = *source
    else {
        panic!("{source:?}");
    };
    assert!(
        source
            .to_string()
            .contains("environment variable `FLOW_TEST_SURELY_UNSET_TOKEN`"),
        "{source}"
    );
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn a_step_delivered_again_repeats_its_idempotency_key() {
    let (receiver, url) = Receiver::start(Behaviour::ok()).await;
    let outputs = Outputs::new().on_exit(Webhook::new(&url).unwrap());

    // Run 1 delivers, then is resumed and delivers the same step again; run 2 is another run.
    for run in ["run-1", "run-1", "run-2"] {
        send(&outputs, run, &booking()).await.0.unwrap();
    }

    let keys: Vec<_> = receiver
        .seen()
        .into_iter()
        .map(|s| s.idempotency_key.unwrap())
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[0], keys[2]);
}

#[tokio::test]
async fn one_failing_sink_does_not_stop_the_others() {
    let (_receiver, url) = Receiver::start(Behaviour::failing(usize::MAX, 500)).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let dead_letter = DeadLetter::memory();
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&url).unwrap().named("partner"))
        .on_exit(ChannelSink::new(tx).named("ui"))
        .retry(quick_retry(2))
        .dead_letter(dead_letter.clone());

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { sinks, .. }) = result else {
        panic!("{result:?}");
    };
    assert_eq!(sinks, ["partner"]);
    assert_eq!(rx.recv().await.unwrap().value(), &booking());
    let outcomes: Vec<_> = records
        .iter()
        .map(|r| (r.name.as_str(), r.index, r.outcome == CallOutcome::Ok))
        .collect();
    assert_eq!(outcomes, [("partner", 0, false), ("ui", 1, true)]);
    let dead = dead_letter.records().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].sink, "partner");
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_written_says_the_value_is_stored_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = Outputs::new()
        .on_exit(closed_channel())
        .dead_letter(DeadLetter::jsonl(
            dir.path().join("missing").join("dead.jsonl"),
        ));

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, OutputError::DeadLetter { ref sinks, .. } if sinks == &["channel"]));
    assert!(message.ends_with("it is not stored anywhere"), "{message}");
    assert!(
        message.contains("could not be written to dead letter `file "),
        "{message}"
    );
    assert!(!message.contains("X7K2QP"));
    assert_eq!(records.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Files and channels.

#[tokio::test]
async fn a_file_sink_appends_lines_that_survive() {
    let dir = tempfile::tempdir().unwrap();
    let records_path = dir.path().join("bookings.jsonl");
    let log_path = dir.path().join("bookings.txt");
    let outputs = Outputs::new()
        .on_exit(FileSink::jsonl(&records_path))
        .on_exit(
            FileSink::jsonl(&log_path)
                .formatted(Format::template("Booked {{ pnr }} for {{ name }}.").unwrap()),
        );

    send(&outputs, "run-1", &booking()).await.0.unwrap();
    let other = json!({ "pnr": "QQ11AA", "name": "Grace" });
    send(&outputs, "run-2", &other).await.0.unwrap();
    drop(outputs);

    let text = std::fs::read_to_string(&records_path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["run_id"].as_str(), &lines[0]["value"]),
        (Some("run-1"), &booking())
    );
    assert_eq!(
        (lines[1]["run_id"].as_str(), &lines[1]["value"]),
        (Some("run-2"), &other)
    );
    assert_ne!(lines[0]["idempotency_key"], lines[1]["idempotency_key"]);

    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap(),
        "Booked X7K2QP for Ada.\nBooked QQ11AA for Grace.\n"
    );
}

/// A file whose last line was torn (the process died while appending it, so it was never
/// acknowledged) gets the next line on a line of its own: the acknowledged line reads back,
/// and only the torn one is unreadable.
#[tokio::test]
async fn a_line_after_a_torn_one_starts_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bookings.jsonl");
    std::fs::write(&path, "{\"run_id\":\"run-0\",\"val").unwrap();
    let outputs = Outputs::new().on_exit(FileSink::jsonl(&path));
    send(&outputs, "run-1", &booking()).await.0.unwrap();
    drop(outputs);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(serde_json::from_str::<Value>(lines[0]).is_err());
    let line: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(
        (line["run_id"].as_str(), &line["value"]),
        (Some("run-1"), &booking())
    );
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn a_file_sink_in_a_missing_directory_fails_at_once_and_the_value_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let dead_letter = DeadLetter::memory();
    let outputs = Outputs::new()
        .on_exit(FileSink::jsonl(
            dir.path().join("missing").join("out.jsonl"),
        ))
        .retry(quick_retry(5))
        .dead_letter(dead_letter.clone());

    let (result, _) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    assert!(
        matches!(*source, DeliveryError::Rejected { attempt: 1, .. }),
        "{source:?}"
    );
    assert_eq!(dead_letter.records().unwrap()[0].value, booking());
}

#[tokio::test]
async fn a_channel_sink_receives_step_and_exit_deliveries() {
    let (step_tx, mut step_rx) = tokio::sync::mpsc::channel(8);
    let (exit_tx, mut exit_rx) = tokio::sync::mpsc::channel(8);
    let outputs = Outputs::new()
        .on_step("book", ChannelSink::new(step_tx).named("step"))
        .on_exit(ChannelSink::new(exit_tx).named("exit"));

    // In `hold`, `book` is not the exit: only its own sink gets its output, and the exit's
    // sink gets `confirm`'s. `search` has no sink of its own and is not the exit: nothing.
    let run = ctx(&outputs, "run-1");
    hold::Workflow::run(&run, booking()).await.unwrap();
    let first = step_rx.recv().await.unwrap();
    assert!(step_rx.try_recv().is_err());
    assert_eq!(
        (first.step(), first.is_exit(), first.attempt()),
        ("book", false, 1)
    );
    assert_eq!(first.value(), &booking());
    assert!(first.formatted().is_none());
    let last = exit_rx.recv().await.unwrap();
    assert!(exit_rx.try_recv().is_err());
    assert_eq!((last.step(), last.is_exit()), ("confirm", true));
    let names: Vec<_> = run.calls().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["step", "exit"]);

    // In `trip`, `book` is the exit: both sinks, each with its own key. The step's sink gets
    // the key it got in `hold`: a key names the run, the step, its visit and the sink.
    let (result, records) = send(&outputs, "run-1", &booking()).await;
    result.unwrap();
    let (a, b) = (step_rx.recv().await.unwrap(), exit_rx.recv().await.unwrap());
    assert!(a.is_exit() && b.is_exit());
    assert_eq!(a.idempotency_key(), first.idempotency_key());
    assert_ne!(a.idempotency_key(), b.idempotency_key());
    let names: Vec<_> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["step", "exit"]);
}

#[tokio::test]
async fn a_full_channel_waits_within_the_timeout() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    tx.send(Delivery::new(
        RunId::from("r"),
        "trip",
        "book",
        "k".into(),
        Value::Null,
    ))
    .await
    .unwrap();
    let outputs = Outputs::new()
        .on_exit(ChannelSink::new(tx))
        .retry(Retry::none())
        .timeout(Duration::from_millis(20));

    // Nobody makes room: the attempt times out.
    let (result, _) = send(&outputs, "run-1", &booking()).await;
    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    assert!(matches!(
        *source,
        DeliveryError::TimedOut { attempts: 1, .. }
    ));

    // Room is made while it waits: delivered on the first attempt.
    let consumer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _old = rx.recv().await;
        rx.recv().await.unwrap()
    });
    let outputs = outputs.timeout(Duration::from_secs(5));
    let (result, records) = send(&outputs, "run-1", &booking()).await;
    result.unwrap();
    assert_eq!(records[0].attempts, 1);
    assert_eq!(consumer.await.unwrap().value(), &booking());
}

/// Workflow `trip` whose step `book` returns a map with tuple keys: JSON object keys must be
/// strings, so it does not serialise to JSON.
mod tuple_keys {
    use super::Failed;
    use flow_runtime::prelude::workflow;

    #[workflow]
    pub mod trip {
        use super::*;
        use std::collections::BTreeMap;

        #[step(entry, exit)]
        pub async fn book(n: u8) -> Result<BTreeMap<(u8, u8), u8>, Failed> {
            Ok(BTreeMap::from([((1, 2), n)]))
        }
    }
}

#[tokio::test]
async fn a_value_that_does_not_serialise_is_an_error_before_any_delivery() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let outputs = Outputs::new().on_exit(ChannelSink::new(tx));
    let ctx = ctx(&outputs, "run-1");

    let err = tuple_keys::trip::Workflow::run(&ctx, 3).await.unwrap_err();

    let tuple_keys::trip::FlowError::Runtime(RuntimeError::Output(err)) = err else {
        panic!("{err:?}");
    };
    assert!(matches!(err, OutputError::Serialize { .. }));
    assert_eq!(
        err.to_string(),
        "run `run-1` of workflow `trip`: the output of step `book` could not be serialised"
    );
    assert!(ctx.calls().is_empty());
    assert!(rx.try_recv().is_err());
}

// ---------------------------------------------------------------------------------------------
// Formats.

#[test]
fn formats_render_json_pretty_json_text_and_templates() {
    let value = booking();

    let json = Format::json().render(&value).unwrap();
    assert_eq!(json.content_type(), "application/json");
    assert_eq!(serde_json::from_str::<Value>(json.body()).unwrap(), value);
    assert!(!json.body().contains('\n'));

    let pretty = Format::pretty_json().render(&value).unwrap();
    assert_eq!(pretty.content_type(), "application/json");
    assert_eq!(serde_json::from_str::<Value>(pretty.body()).unwrap(), value);
    assert!(
        pretty.body().contains("\n  \"name\": \"Ada\""),
        "{}",
        pretty.body()
    );

    let text = Format::text(|v| {
        format!(
            "{}/{}",
            v["name"].as_str().unwrap(),
            v["pnr"].as_str().unwrap()
        )
    });
    let text = text.render(&value).unwrap();
    assert_eq!(
        (text.content_type(), text.body()),
        ("text/plain; charset=utf-8", "Ada/X7K2QP")
    );

    let template = Format::template(
        "{% if vip %}VIP {% endif %}{{ name }}: {% for leg in legs %}{{ loop.index }}. {{ leg }} {% endfor %}({{ pnr }})",
    )
    .unwrap();
    let trip = json!({ "name": "Ada", "pnr": "X7K2QP", "legs": ["LHR-JFK", "JFK-SFO"] });
    assert_eq!(
        template.render(&trip).unwrap().body(),
        "Ada: 1. LHR-JFK 2. JFK-SFO (X7K2QP)"
    );

    // A value that is not an object is `value`; nothing is HTML-escaped.
    let scalar = Format::template("<b>{{ value }}</b>").unwrap();
    assert_eq!(
        scalar.render(&json!("a & b")).unwrap().body(),
        "<b>a & b</b>"
    );
    assert_eq!(
        scalar
            .with_content_type("text/html")
            .render(&json!(1))
            .unwrap()
            .content_type(),
        "text/html"
    );
}

#[test]
fn a_template_syntax_error_is_reported_when_the_format_is_made() {
    let err = Format::template("Booked {{ pnr ").unwrap_err();
    assert!(matches!(err, OutputError::Template { .. }));
    assert_eq!(
        err.to_string(),
        "invalid output template: syntax error: unexpected end of input, expected end of \
         variable block (in template:1)"
    );

    let err = Format::template("line one\n{% for x in xs %}never closed").unwrap_err();
    assert!(err.to_string().ends_with("(in template:2)"), "{err}");
}

#[tokio::test]
async fn a_template_that_cannot_render_the_value_fails_the_delivery_for_good() {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let format = Format::template("Booked {{ reference }}").unwrap();
    assert!(matches!(
        format.render(&booking()),
        Err(OutputError::Render { .. })
    ));
    let dead_letter = DeadLetter::memory();
    let outputs = Outputs::new()
        .on_exit(ChannelSink::new(tx).formatted(format))
        .retry(quick_retry(5))
        .dead_letter(dead_letter.clone());

    let (result, records) = send(&outputs, "run-1", &booking()).await;

    let Err(OutputError::Undelivered { source, .. }) = result else {
        panic!("{result:?}");
    };
    let DeliveryError::Rejected {
        attempt: 1, source, ..
    } = *source
    else {
        panic!("{source:?}");
    };
    assert_eq!(
        source.to_string(),
        "the output template could not render the value: undefined value (in template:1)"
    );
    assert_eq!(records[0].attempts, 1);
    assert!(rx.try_recv().is_err());
    assert_eq!(dead_letter.records().unwrap()[0].value, booking());
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[tokio::test]
async fn unknown_steps_are_the_attachments_the_workflow_lacks() {
    let outputs = Outputs::new()
        .on_step("serach", closed_channel())
        .on_step("book", closed_channel())
        .on_step("serach", closed_channel())
        .on_step("pay", closed_channel())
        .on_exit(closed_channel());
    let ctx = ctx(&outputs, "run-1");

    let error = hold::Workflow::run(&ctx, booking()).await.unwrap_err();

    // Each once, in the order they were attached; nothing ran.
    let hold::FlowError::Runtime(RuntimeError::UnknownOutputStep { steps, valid, .. }) = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(steps, &["serach", "pay"]);
    assert_eq!(valid, &["search", "book", "confirm"]);
    assert!(ctx.calls().is_empty());
}

#[test]
fn invalid_webhook_urls_are_refused_without_printing_them() {
    let err = Webhook::new("hooks.example.com/s3cret").unwrap_err();
    assert!(matches!(err, OutputError::InvalidUrl { .. }));
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn debug_shows_the_configuration_without_values_or_secrets() {
    let hook = Webhook::new("http://127.0.0.1:9/hooks/p4th-t0ken")
        .unwrap()
        .auth(Auth::api_key("x-api-key", Credential::new("k3y-s3cret")));
    let outputs = Outputs::new()
        .on_step("book", FileSink::jsonl("/tmp/out.jsonl"))
        .on_exit(hook.formatted(Format::json()))
        .dead_letter(DeadLetter::memory());
    let printed = format!("{outputs:?}");
    assert!(
        printed.contains(r#""file /tmp/out.jsonl" on step "book""#),
        "{printed}"
    );
    assert!(
        printed.contains(r#""webhook http://127.0.0.1:9" on exit"#),
        "{printed}"
    );
    assert!(printed.contains(r#"DeadLetter("memory")"#), "{printed}");
    assert!(
        !printed.contains("s3cret") && !printed.contains("p4th"),
        "{printed}"
    );

    let delivery = Delivery::new(
        RunId::from("run-1"),
        "trip",
        "book",
        "k-1".into(),
        booking(),
    );
    assert!(!format!("{delivery:?}").contains("X7K2QP"));
}
