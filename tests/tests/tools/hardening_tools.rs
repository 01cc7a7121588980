//! Issue 8, the tool and output layer, against real servers on loopback:
//!
//! - no `Retry-After` (not even `u64::MAX` seconds after a slow attempt) can panic the retry
//!   loop, of a tool or of a webhook;
//! - a credential the runtime sent never comes back out, in any form it travelled in, when a
//!   server echoes the request: not in errors (`Display`, `Debug`, sources), logs, the SQLite
//!   store of an engine's run, call records, or dead letters; nor from a URL in `InvalidUrl`;
//! - the defaults bound every call: a per-attempt timeout, a total deadline, a cap on the
//!   `Retry-After` honoured (a longer one fails the call at once, saying what was asked), and a
//!   response body limit enforced while the body streams in; `Retry-After` as an HTTP date.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use base64::Engine as _;
use flow_runtime::output::{DeadLetter, DeliveryError, OutputError, Outputs, Webhook};
use flow_runtime::prelude::*;
use flow_runtime::state::{CallOutcome, CallRecord, Engine, Setup};
use flow_runtime::store::RunStatus;
use flow_runtime::tool::ExposeSecret as _;
use flow_runtime::tool::http::{HttpJson, ResponseTooLarge};
use flow_tests::http::{header_text, serve};
use flow_tests::store::TempDb;
use flow_tests::trace::Captured;
use flow_tests::{error_chain, quick_retry};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Servers.

/// A server that answers every request with `status`, `Retry-After: retry_after` when given,
/// after `delay`, and a body that echoes what an indiscreet service would: the request's
/// `Authorization` and `x-api-key` headers and its URI (query included), as JSON. Counts the
/// requests.
async fn echoing(
    status: u16,
    retry_after: Option<String>,
    delay: Duration,
) -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let retry_after = retry_after.clone();
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            let text = |name: &str| header_text(&headers, name);
            let body = serde_json::json!({
                "auth": text("authorization"),
                "key": text("x-api-key"),
                "uri": uri.to_string(),
            });
            let mut response =
                (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
            if let Some(wait) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, wait.parse().unwrap());
            }
            response
        }
    });
    (serve(app).await, requests)
}

/// A server that answers 503 with `Retry-After: first_wait` once, then 200 `"ok"`; records
/// when each request came.
async fn busy_once(first_wait: String) -> (String, Arc<Mutex<Vec<tokio::time::Instant>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move || {
        let log = Arc::clone(&log);
        let first_wait = first_wait.clone();
        async move {
            let n = {
                let mut log = log.lock().unwrap();
                log.push(tokio::time::Instant::now());
                log.len()
            };
            if n == 1 {
                let mut response = StatusCode::SERVICE_UNAVAILABLE.into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, first_wait.parse().unwrap());
                response
            } else {
                "\"ok\"".into_response()
            }
        }
    });
    (serve(app).await, seen)
}

/// Reads what has come on `socket` (some of it): without tokio's `io-util`.
async fn read_some(socket: &TcpStream) -> std::io::Result<usize> {
    let mut buf = [0; 4096];
    loop {
        socket.readable().await?;
        match socket.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            read => return read,
        }
    }
}

/// Writes all of `data` to `socket`: without tokio's `io-util`.
async fn write_all(socket: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        socket.writable().await?;
        match socket.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A server that accepts connections, reads the request, and never answers.
async fn silent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            let _ = read_some(&socket).await;
            held.push(socket);
        }
    });
    origin
}

/// 100 MB: what [`flood`] sends.
const FLOOD_BYTES: u64 = 100 * 1024 * 1024;

/// A server that answers 200 with a body of [`FLOOD_BYTES`] spaces in 64 KiB pieces, chunked
/// or with a `Content-Length`, until the client hangs up. Resolves the second value, once the
/// connection is over, with how many body bytes the server managed to write.
async fn flood(chunked: bool) -> (String, tokio::sync::oneshot::Receiver<u64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (done, written) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let _ = read_some(&socket).await;
        let head = if chunked {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_owned()
        } else {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {FLOOD_BYTES}\r\n\r\n"
            )
        };
        let mut sent = 0;
        if write_all(&socket, head.as_bytes()).await.is_ok() {
            let piece = vec![b' '; 64 * 1024];
            let mut frame = Vec::new();
            if chunked {
                frame.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            }
            frame.extend_from_slice(&piece);
            if chunked {
                frame.extend_from_slice(b"\r\n");
            }
            while sent < FLOOD_BYTES {
                if write_all(&socket, &frame).await.is_err() {
                    break;
                }
                sent += piece.len() as u64;
            }
            if chunked && sent >= FLOOD_BYTES {
                let _ = write_all(&socket, b"0\r\n\r\n").await;
            }
        }
        let _ = done.send(sent);
    });
    (origin, written)
}

// ---------------------------------------------------------------------------------------------
// Tools.

/// POSTs its input to `/ask` and decodes the answer as a string. With a credential, it also
/// sends the bare secret as the query parameter `key` (as some APIs want it), so that the
/// secret travels percent-encoded too.
pub struct Ask {
    api: HttpJson,
}

impl Ask {
    fn at(origin: &str) -> Self {
        Self {
            api: HttpJson::new(origin).unwrap(),
        }
    }
}

impl Tool for Ask {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "ask";
    const DESCRIPTION: &'static str = "Asks the service.";

    async fn call(&self, ctx: &ToolCtx, input: String) -> Result<String, ToolError> {
        let path = match ctx.secret() {
            None => "ask".to_owned(),
            Some(secret) => {
                let with = reqwest::Url::parse_with_params(
                    "http://query.invalid/",
                    [("key", secret.expose_secret())],
                )
                .map_err(|e| ToolError::permanent("no query").with_source(e))?;
                format!("ask?{}", with.query().unwrap_or_default())
            }
        };
        let request = self
            .api
            .request(ctx, reqwest::Method::POST, &path)?
            .json(&input);
        self.api.send(request).await
    }
}

fn key() -> IdempotencyKey {
    IdempotencyKey::from("k-1")
}

// ---------------------------------------------------------------------------------------------
// Capturing everything.

/// `secret` in every form it may travel in: as it is, form- and percent-encoded (query),
/// escaped in JSON, in base64; and `extra` forms (a basic-auth pair's base64).
fn forms(secret: &str, extra: &[String]) -> Vec<String> {
    let url = reqwest::Url::parse_with_params("http://x/", [("k", secret)]).unwrap();
    let form_encoded = url.query().unwrap().trim_start_matches("k=").to_owned();
    let json = serde_json::Value::from(secret).to_string();
    let mut forms = vec![
        secret.to_owned(),
        form_encoded,
        json.trim_matches('"').to_owned(),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ];
    forms.extend_from_slice(extra);
    forms
}

/// Fails if any of `forms` is in `text`.
fn assert_clean(what: &str, text: &str, forms: &[String]) {
    for form in forms {
        assert!(
            !text.contains(form.as_str()),
            "{what} holds the secret as `{form}`:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 1: no `Retry-After` panics the retry loop.

/// A huge `Retry-After` after an attempt of over a second, under `max_elapsed`: the sum of the
/// time spent and the wait overflowed a `Duration` and panicked. Now the call gives up (the
/// wait would end past `max_elapsed`). The cap on `Retry-After` is lifted so that the
/// arithmetic is what is tested.
#[tokio::test]
async fn a_retry_after_of_u64_max_seconds_after_a_slow_attempt_gives_up_without_panicking() {
    let (origin, requests) =
        echoing(503, Some(u64::MAX.to_string()), Duration::from_millis(1100)).await;
    let policy = ToolPolicy::builder()
        .retry(quick_retry(3).max_elapsed(Duration::from_secs(10)))
        .max_retry_after(Duration::MAX)
        .deadline(Duration::MAX)
        .build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    let CallError::GaveUp {
        attempts: 1,
        source,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(source.retry_after(), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

/// One step, `book`, whose output ends the run.
#[workflow]
pub mod booked {
    #[step(entry, exit)]
    pub async fn book(pnr: String) -> Result<String, std::convert::Infallible> {
        Ok(pnr)
    }
}

/// Runs `booked` as run `run-1` with these outputs, so that `"X7K2QP"` is delivered to the
/// exit's sinks, and expects the delivery to fail: its error, and the run's records.
async fn deliver_booking(outputs: Outputs) -> (OutputError, Vec<CallRecord>) {
    let ctx = Ctx::builder(()).run_id("run-1").outputs(outputs).build();
    match booked::Workflow::run(&ctx, "X7K2QP".into()).await {
        Err(booked::FlowError::Runtime(RuntimeError::Output(err))) => (err, ctx.calls()),
        other => panic!("not a failed delivery: {other:?}"),
    }
}

/// The same answer from a webhook, in the output sinks' retry loop.
#[tokio::test]
async fn a_webhook_answering_retry_after_u64_max_after_a_slow_attempt_gives_up_without_panicking() {
    let (origin, requests) =
        echoing(503, Some(u64::MAX.to_string()), Duration::from_millis(1100)).await;
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&format!("{origin}/hook")).unwrap())
        .retry(quick_retry(3).max_elapsed(Duration::from_secs(10)))
        .max_retry_after(Duration::MAX)
        .deadline(Duration::MAX);

    let (err, _) = deliver_booking(outputs).await;

    let OutputError::Undelivered { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(**source, DeliveryError::GaveUp { attempts: 1, .. }),
        "{source:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Item 4: defaults that bound every call.

#[test]
fn the_defaults_are_documented_values() {
    let policy = ToolPolicy::default();
    assert_eq!(policy.timeout(), Some(Duration::from_secs(30)));
    assert_eq!(policy.deadline(), Duration::from_secs(120));
    assert_eq!(policy.max_retry_after(), Duration::from_secs(60));
    assert_eq!(
        HttpJson::new("http://127.0.0.1:9/")
            .unwrap()
            .response_body_limit(),
        10 * 1024 * 1024
    );
    let policy = ToolPolicy::builder()
        .timeout(Duration::from_secs(5))
        .deadline(Duration::from_secs(20))
        .max_retry_after(Duration::from_secs(3))
        .build();
    assert_eq!(
        (
            policy.timeout(),
            policy.deadline(),
            policy.max_retry_after()
        ),
        (
            Some(Duration::from_secs(5)),
            Duration::from_secs(20),
            Duration::from_secs(3)
        )
    );
}

/// A server that never answers held a call with the default policy for ever; now the default
/// per-attempt timeout ends it.
#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out_under_the_default_policy() {
    let origin = silent().await;
    let tool = PolicyTool::new(Ask::at(&origin), ToolPolicy::default());

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(
        matches!(err, CallError::TimedOut { attempts: 1, timeout, .. } if timeout == Duration::from_secs(30)),
        "{err:?}"
    );
}

/// Without a per-attempt timeout, the call's deadline still ends it.
#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_call_whose_attempts_have_no_timeout() {
    let origin = silent().await;
    let policy = ToolPolicy::builder()
        .timeout(Duration::MAX)
        .deadline(Duration::from_secs(5))
        .build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(
        matches!(err, CallError::DeadlineExceeded { attempts: 1, deadline, .. } if deadline == Duration::from_secs(5)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("ToolPolicyBuilder::deadline"),
        "{err}"
    );
}

/// A webhook sent with a client of its own (no timeout) to a receiver that never answers:
/// the outputs' default timeout ends each attempt.
#[tokio::test(start_paused = true)]
async fn a_webhook_that_never_answers_times_out_under_the_default_outputs() {
    let origin = silent().await;
    let outputs = Outputs::new().on_exit(
        Webhook::new(&format!("{origin}/hook"))
            .unwrap()
            .client(reqwest::Client::new()),
    );

    let (err, _) = deliver_booking(outputs).await;

    let OutputError::Undelivered { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(**source, DeliveryError::TimedOut { attempts: 3, timeout, .. } if timeout == Duration::from_secs(30)),
        "{source:?}"
    );
}

/// `Retry-After: 100000` without `max_elapsed` slept ~28 hours; now the call fails at once and
/// says what the service asked for.
#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_the_call_at_once_saying_what_was_asked() {
    let (origin, requests) = echoing(503, Some("100000".into()), Duration::ZERO).await;
    let policy = ToolPolicy::builder().retry(quick_retry(3)).build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tokio::time::timeout(Duration::from_secs(20), tool.call(&key(), "hi".into()))
        .await
        .expect("the call waited for the Retry-After instead of failing")
        .unwrap_err();

    let CallError::RetryAfterTooLong {
        attempts: 1,
        asked,
        max,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*asked, Duration::from_secs(100_000));
    assert_eq!(*max, Duration::from_secs(60));
    assert!(
        err.to_string()
            .contains("ToolPolicyBuilder::max_retry_after"),
        "{err}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

/// The same for a webhook: the delivery fails at once (to the dead letter) instead of holding
/// the run.
#[tokio::test]
async fn a_webhook_asking_for_a_retry_after_beyond_the_cap_is_not_waited_for() {
    let (origin, requests) = echoing(503, Some("100000".into()), Duration::ZERO).await;
    let dead = DeadLetter::memory();
    let outputs = Outputs::new()
        .on_exit(Webhook::new(&format!("{origin}/hook")).unwrap())
        .dead_letter(dead.clone());

    let (err, _) = tokio::time::timeout(Duration::from_secs(20), deliver_booking(outputs))
        .await
        .expect("the delivery waited for the Retry-After instead of failing");

    let OutputError::Undelivered { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(**source, DeliveryError::RetryAfterTooLong { attempts: 1, asked, .. } if asked == Duration::from_secs(100_000)),
        "{source:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert_eq!(dead.records().unwrap().len(), 1);
}

/// `Retry-After` as an HTTP date two seconds ahead: the retry waits for it (the backoff alone
/// would wait at most 1 ms; the date has a resolution of one second, hence "over one").
#[tokio::test]
async fn a_retry_after_given_as_an_http_date_is_honoured() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let (origin, seen) = busy_once(date).await;
    let policy = ToolPolicy::builder().retry(quick_retry(3)).build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    assert_eq!(tool.call(&key(), "hi".into()).await.unwrap(), "ok");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let gap = seen[1] - seen[0];
    assert!(gap >= Duration::from_millis(900), "{gap:?}");
}

/// An HTTP date a day ahead is beyond the cap, like its number of seconds.
#[tokio::test]
async fn a_retry_after_http_date_beyond_the_cap_fails_the_call() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400));
    let (origin, seen) = busy_once(date).await;
    let policy = ToolPolicy::builder().retry(quick_retry(3)).build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(
        matches!(err, CallError::RetryAfterTooLong { asked, .. } if asked > Duration::from_secs(86_000)),
        "{err:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// The peak resident set size of this process so far, in KiB (Linux), for the report only.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A chunked answer of 100 MB to a client with the default 10 MiB limit: refused with a typed
/// error as soon as the body goes over, without reading (let alone buffering) the rest.
#[tokio::test]
async fn a_chunked_100_mb_answer_is_refused_while_it_streams_in() {
    let (origin, written) = flood(true).await;
    let tool = PolicyTool::new(Ask::at(&origin), ToolPolicy::default());
    let before = peak_rss_kib();

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    let after = peak_rss_kib();
    let CallError::Rejected { source, .. } = &err else {
        panic!("{err:?}");
    };
    let too_large = std::error::Error::source(source)
        .and_then(|s| s.downcast_ref::<ResponseTooLarge>())
        .unwrap_or_else(|| panic!("{source:?}"));
    assert_eq!(too_large.limit(), 10 * 1024 * 1024);
    assert!(
        source
            .to_string()
            .contains("larger than the 10485760 bytes"),
        "{source}"
    );
    // The client hung up long before the end: the server could write its socket buffers'
    // worth beyond the limit, not the other 90 MB.
    let written = written.await.unwrap();
    assert!(written < FLOOD_BYTES / 2, "{written} bytes were sent");
    eprintln!(
        "chunked 100 MB answer: refused after the server wrote {} KiB; peak RSS {before:?} -> {after:?} KiB",
        written / 1024
    );
}

/// An answer that declares 100 MB is refused from its `Content-Length`, before its body is
/// read; a smaller limit of one's own applies the same way.
#[tokio::test]
async fn an_answer_declaring_a_body_over_the_limit_is_refused_before_reading_it() {
    let (origin, written) = flood(false).await;
    let tool = PolicyTool::new(Ask::at(&origin), ToolPolicy::default());
    let err = tool.call(&key(), "hi".into()).await.unwrap_err();
    let CallError::Rejected { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        std::error::Error::source(source).is_some_and(|s| s.is::<ResponseTooLarge>()),
        "{source:?}"
    );
    assert!(written.await.unwrap() < FLOOD_BYTES / 2);

    let (origin, _) = echoing(200, None, Duration::ZERO).await;
    let small = Ask {
        api: HttpJson::new(&origin).unwrap().max_response_body(16),
    };
    let err = PolicyTool::new(small, ToolPolicy::default())
        .call(&key(), "hi".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Rejected { source, .. }
            if std::error::Error::source(source).and_then(|s| s.downcast_ref::<ResponseTooLarge>()).is_some_and(|e| e.limit() == 16)),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 3: no credential comes back out.

/// Looks like a real token: characters that URLs and JSON encode, long enough to be unique.
const SECRET: &str = "s3cr3t/pa+ss=word\"42";

/// A 401 that echoes `Bearer <token>` (and the token percent-encoded in the URI): rejected,
/// and the error says nothing of the token.
#[tokio::test]
async fn a_bearer_token_echoed_by_a_401_is_in_no_error_nor_log() {
    let captured = Captured::default();
    let _guard = captured.install();
    let (origin, _) = echoing(401, None, Duration::ZERO).await;
    let policy = ToolPolicy::builder()
        .auth(Auth::bearer(Credential::new(SECRET)))
        .build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(matches!(err, CallError::Rejected { .. }), "{err:?}");
    let printed = error_chain(&err);
    // The echo is there, redacted: the test looked at a real echo.
    assert!(printed.contains("Bearer [REDACTED]"), "{printed}");
    assert!(printed.contains("key=[REDACTED]"), "{printed}");
    let forms = forms(SECRET, &[]);
    assert_clean("the error", &printed, &forms);
    assert_clean("the logs", &captured.text(), &forms);
}

/// A 400 whose body echoes the bearer token across the 200th character, where the error's
/// body snippet is cut: the token is taken out of the whole body before the cut, so no part of
/// it (no 8 characters of it) is in the error, its `Debug` or its sources.
#[tokio::test]
async fn a_bearer_token_echoed_across_the_snippet_cut_is_in_no_error() {
    const TOKEN: &str = "tok_9fQ2xLm7Vb4Rt8Ks1Zp6Wn3Hy5Jd0Ca";
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let auth = header_text(&headers, "authorization").unwrap_or_default();
        // The token from the 193rd character on: its first 8 characters come before the cut
        // at 200, the rest after.
        let body = format!("{} you sent: {auth}; it is not valid", "x".repeat(174));
        (StatusCode::BAD_REQUEST, body)
    });
    let origin = serve(app).await;
    let policy = ToolPolicy::builder()
        .auth(Auth::bearer(Credential::new(TOKEN)))
        .build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(matches!(err, CallError::Rejected { .. }), "{err:?}");
    let printed = error_chain(&err);
    // The echo was read: the snippet goes as far as the token, redacted, then is cut.
    assert!(printed.contains("you sent: Bearer [REDACTE…"), "{printed}");
    for start in 0..=TOKEN.len() - 8 {
        let part = &TOKEN[start..start + 8];
        assert!(
            !printed.contains(part),
            "the error holds `{part}`:\n{printed}"
        );
    }
}

/// An API key in its own header, echoed inside a JSON body (so with its `"` escaped) by a 503
/// that is retried: not in the error, nor in the retry warnings.
#[tokio::test]
async fn an_api_key_echoed_by_a_retried_503_is_in_no_error_nor_retry_warning() {
    let captured = Captured::default();
    let _guard = captured.install();
    let (origin, requests) = echoing(503, None, Duration::ZERO).await;
    let policy = ToolPolicy::builder()
        .auth(Auth::api_key("x-api-key", Credential::new(SECRET)))
        .retry(quick_retry(3))
        .build();
    let tool = PolicyTool::new(Ask::at(&origin), policy);

    let err = tool.call(&key(), "hi".into()).await.unwrap_err();

    assert!(
        matches!(err, CallError::GaveUp { attempts: 3, .. }),
        "{err:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    let logs = captured.text();
    assert!(logs.contains("transient failure; retrying"), "{logs}");
    assert!(logs.contains("[REDACTED]"), "{logs}");
    let forms = forms(SECRET, &[]);
    assert_clean("the error", &error_chain(&err), &forms);
    assert_clean("the logs", &logs, &forms);
}

/// Its step may call the echoing service; the first call's failure is caught (so its record,
/// with the error, is checkpointed), the second's fails the run.
#[workflow]
pub mod guarded {
    use super::*;

    #[step(entry, tools = [Ask])]
    pub async fn first(ctx: &Ctx<(), tools::First>, question: String) -> Result<String, CallError> {
        match ctx.call::<Ask>(question.clone()).await {
            Ok(answer) => Ok(answer),
            Err(_) => Ok(question),
        }
    }

    #[step(after = first, exit, tools = [Ask])]
    pub async fn second(
        ctx: &Ctx<(), tools::Second>,
        question: String,
    ) -> Result<String, CallError> {
        ctx.call::<Ask>(question).await
    }
}

/// A basic-auth credential echoed by a 503 to a run under an engine on SQLite: the run fails,
/// and neither the password nor the base64 `user:password` is anywhere in the database files
/// (history, call records, the failure stored), the logs (retries, "run failed"), or the calls
/// the store returns.
#[tokio::test]
async fn a_basic_credential_echoed_to_an_engine_run_is_not_in_its_store_nor_logs() {
    let captured = Captured::default();
    let _guard = captured.install();
    let (origin, requests) = echoing(503, None, Duration::ZERO).await;
    let db = TempDb::new();
    let store = db.open();
    let policy = ToolPolicy::builder()
        .auth(Auth::basic("ada", Credential::new(SECRET)))
        .retry(quick_retry(2))
        .build();
    let tools = Toolbox::new().with(PolicyTool::new(Ask::at(&origin), policy));
    let engine = Engine::builder(Arc::clone(&store))
        .lease(flow_tests::store::PAUSED_LEASE)
        .register::<guarded::Workflow>(Setup::new(()).tools(tools))
        .build();

    let run = engine
        .start::<guarded::Workflow>("run-basic", "hello".into())
        .await
        .unwrap();
    let failed = {
        let store = Arc::clone(&store);
        let run = run.clone();
        async move {
            while store.status(&run).await.unwrap().unwrap().status != RunStatus::Failed {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    engine.run_until(failed).await.unwrap();
    // Both steps called, twice each.
    assert_eq!(requests.load(Ordering::SeqCst), 4);

    let history = store.history(&run).await.unwrap();
    let calls: Vec<_> = history.iter().flat_map(|h| h.calls.clone()).collect();
    let CallOutcome::Failed(recorded) = &calls[0].outcome else {
        panic!("{calls:?}");
    };
    // The failure is stored with the run and its history: the step, and the echo, redacted.
    let failure = store.status(&run).await.unwrap().unwrap().failure.unwrap();
    assert_eq!(failure.step.as_deref(), Some("second"));
    assert!(failure.reason.contains("Basic [REDACTED]"), "{failure}");
    assert_eq!(history.last().unwrap().failure.as_ref(), Some(&failure));
    assert_clean("the failure", &failure.to_string(), &forms(SECRET, &[]));
    drop(engine);
    drop(store);

    let pair = base64::engine::general_purpose::STANDARD.encode(format!("ada:{SECRET}"));
    let forms = forms(SECRET, &[pair]);
    let logs = captured.text();
    assert!(logs.contains("run failed"), "{logs}");
    assert!(logs.contains("Basic [REDACTED]"), "{logs}");
    assert_clean("the logs", &logs, &forms);
    assert_clean("the call record", &format!("{recorded} {calls:?}"), &forms);
    // Two passes: the store's last connection may be closing while the first one reads, and
    // SQLite then folds the WAL into the database and deletes `-wal` and `-shm`. A file gone
    // between listing and reading was folded into one the second pass reads.
    let mut files = 0;
    for _pass in 0..2 {
        for entry in std::fs::read_dir(db.dir()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", path.display()),
            };
            assert_clean(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
                &forms,
            );
            files += 1;
        }
    }
    assert!(files >= 2, "the database file is read in both passes");
}

/// A webhook whose receiver echoes its bearer token and its URL (whose path and query hold a
/// token, as chat webhooks' do): nothing of either in the error, the call records, the logs, or
/// the dead letter (file and memory).
#[tokio::test]
async fn a_webhook_credential_and_url_token_echoed_are_not_in_errors_logs_or_dead_letters() {
    const PATH_TOKEN: &str = "B0hookT0ken9";
    const QUERY_TOKEN: &str = "sig+0/x=";
    let captured = Captured::default();
    let _guard = captured.install();
    let (origin, requests) = echoing(503, None, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let letters = dir.path().join("dead.jsonl");
    let dead = DeadLetter::jsonl(&letters);
    let url = reqwest::Url::parse_with_params(
        &format!("{origin}/services/{PATH_TOKEN}"),
        [("sig", QUERY_TOKEN)],
    )
    .unwrap();
    let hook = Webhook::new(url.as_str())
        .unwrap()
        .auth(Auth::bearer(Credential::new(SECRET)));
    let outputs = Outputs::new()
        .on_exit(hook)
        .retry(quick_retry(2))
        .dead_letter(dead.clone());

    let (err, records) = deliver_booking(outputs).await;

    assert_eq!(requests.load(Ordering::SeqCst), 2);
    let mut forms = forms(SECRET, &[PATH_TOKEN.to_owned()]);
    forms.extend(self::forms(QUERY_TOKEN, &[]));
    let OutputError::Undelivered { source, .. } = &err else {
        panic!("{err:?}");
    };
    let described = format!("{}: {}", source, error_chain(&**source));
    assert!(described.contains("Bearer [REDACTED]"), "{described}");
    assert_clean(
        "the error",
        &format!("{}\n{described}", error_chain(&err)),
        &forms,
    );
    assert_clean("the call records", &format!("{records:?}"), &forms);
    let stored = dead.records().unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].error.contains("[REDACTED]"),
        "{}",
        stored[0].error
    );
    assert_clean("the dead letter", &format!("{stored:?}"), &forms);
    assert_clean(
        "the dead-letter file",
        &std::fs::read_to_string(&letters).unwrap(),
        &forms,
    );
    let logs = captured.text();
    assert!(logs.contains("output not delivered"), "{logs}");
    assert_clean("the logs", &logs, &forms);
}

/// A receiver that names, in its 404, only the last segment of the webhook's path: the token
/// chat webhooks put there (`/api/webhooks/<id>/<token>`). The whole path was taken out of
/// messages, but not a segment of it alone, so the token reached the error and the dead letter.
#[tokio::test]
async fn a_webhook_token_echoed_alone_from_the_urls_path_is_not_in_errors_or_dead_letters() {
    const PATH_TOKEN: &str = "hK9x-Wq2mZ7vT4pL";
    let app = axum::Router::new().fallback(|uri: Uri| async move {
        let token = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
        let body = serde_json::json!({ "message": format!("unknown webhook token {token}") });
        (StatusCode::NOT_FOUND, body.to_string())
    });
    let origin = serve(app).await;
    let dead = DeadLetter::memory();
    let hook = Webhook::new(&format!("{origin}/api/webhooks/1234/{PATH_TOKEN}")).unwrap();
    let outputs = Outputs::new()
        .on_exit(hook)
        .retry(quick_retry(1))
        .dead_letter(dead.clone());

    let (err, records) = deliver_booking(outputs).await;

    let forms = forms(PATH_TOKEN, &[]);
    let chain = error_chain(&err);
    assert!(
        chain.contains("unknown webhook token [REDACTED]"),
        "{chain}"
    );
    assert_clean("the error", &chain, &forms);
    assert_clean("the call records", &format!("{records:?}"), &forms);
    assert_clean(
        "the dead letter",
        &format!("{:?}", dead.records().unwrap()),
        &forms,
    );
}

/// A base URL that does not parse, with a password and a key in it: the error shows the rest.
#[test]
fn an_invalid_url_holding_secrets_is_not_repeated_whole() {
    let given = format!("http://ada:{SECRET}@api.internal:99999/v1?key={SECRET}");
    let err = HttpJson::new(&given).unwrap_err();
    let printed = error_chain(&err);
    assert!(printed.contains("api.internal:99999/v1"), "{printed}");
    assert_clean("the error", &printed, &forms(SECRET, &[]));

    let err = Webhook::new(&given).unwrap_err();
    assert!(matches!(err, OutputError::InvalidUrl { .. }), "{err:?}");
    assert_clean("the error", &error_chain(&err), &forms(SECRET, &[]));
}
