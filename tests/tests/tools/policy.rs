//! The tool policy stack against a real HTTP server on loopback: retries (and `Retry-After`),
//! permanent errors, timeouts, rate and concurrency limits, credentials, idempotency keys, and
//! secrets that stay out of every printout.
//!
//! Each test starts its own axum server, told how to answer (fail the first N requests with a
//! status, sleep before answering), which records every request it sees. The tool under test
//! is a small reqwest client, as a user would write one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_runtime::state::RunId;
use flow_runtime::tool::{
    Auth, CallError, Credential, ExposeSecret, IdempotencyKey, PolicyTool, RateLimit, Retry, Tool,
    ToolCtx, ToolError, ToolPolicy,
};
use flow_tests::http::{header_text, serve};
use flow_tests::trace::Captured;
use flow_tests::{error_chain, quick_retry};
use reqwest::header::HeaderValue;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The server.

/// How the server answers.
#[derive(Clone, Copy)]
struct Behaviour {
    /// The first `fail_first` requests get `fail_status`; later ones 200.
    fail_first: usize,
    fail_status: StatusCode,
    /// Sent with every failure, in seconds.
    retry_after: Option<u64>,
    /// How long every request takes to answer.
    sleep: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            fail_first: 0,
            fail_status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
            sleep: Duration::ZERO,
        }
    }
}

/// One request, as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    authorization: Option<String>,
    api_key: Option<String>,
    idempotency_key: Option<String>,
    attempt: Option<String>,
}

struct Server {
    behaviour: Behaviour,
    seen: Mutex<Vec<Seen>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Server {
    /// Starts a server on an ephemeral loopback port; returns it and its URL.
    async fn start(behaviour: Behaviour) -> (Arc<Self>, String) {
        let server = Arc::new(Self {
            behaviour,
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(answer))
            .with_state(Arc::clone(&server));
        let url = format!("{}/", serve(app).await);
        (server, url)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Decrements the in-flight count however the handler ends (a client that timed out drops it).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Json(ask): Json<Ask>,
) -> Response {
    let text = |name: &str| header_text(&headers, name);
    let index = {
        let mut seen = server.seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            authorization: text("authorization"),
            api_key: text("x-api-key"),
            idempotency_key: text("idempotency-key"),
            attempt: text("x-attempt"),
        });
        seen.len() - 1
    };
    let now = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _in_flight = InFlight(&server.in_flight);
    server.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(server.behaviour.sleep).await;

    let b = server.behaviour;
    if index < b.fail_first {
        let mut response = (b.fail_status, "no").into_response();
        if let Some(secs) = b.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        return response;
    }
    Json(Answer { echo: ask.text }).into_response()
}

// ---------------------------------------------------------------------------------------------
// The tool.

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
struct Ask {
    text: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Answer {
    echo: String,
}

/// POSTs its input to the server, with the idempotency key, the attempt number and the
/// credential as headers; records when each attempt started.
struct Echo {
    client: reqwest::Client,
    url: String,
    started: Mutex<Vec<Instant>>,
}

impl Echo {
    fn new(url: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: url.to_owned(),
            started: Mutex::new(Vec::new()),
        }
    }
}

impl Tool for Echo {
    type Input = Ask;
    type Output = Answer;
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Echoes a text through the test server.";

    async fn call(&self, ctx: &ToolCtx, input: Ask) -> Result<Answer, ToolError> {
        self.started.lock().unwrap().push(Instant::now());
        let mut request = self
            .client
            .post(&self.url)
            .header("idempotency-key", ctx.idempotency_key().as_str())
            .header("x-attempt", ctx.attempt())
            .json(&input);
        if let Some(auth) = ctx.auth_header() {
            let mut value = HeaderValue::from_str(auth.value().expose_secret()).map_err(|e| {
                ToolError::permanent("credential is not a header value").with_source(e)
            })?;
            value.set_sensitive(true);
            request = request.header(auth.name(), value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ToolError::transient("request failed").with_source(e))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .map_err(|e| ToolError::permanent("unexpected body").with_source(e));
        }
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let message = format!("server answered {status}");
        let error = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            ToolError::transient(message)
        } else {
            ToolError::permanent(message)
        };
        Err(match retry_after {
            Some(wait) => error.with_retry_after(wait),
            None => error,
        })
    }
}

fn ask(text: &str) -> Ask {
    Ask { text: text.into() }
}

fn key(call: u32) -> IdempotencyKey {
    IdempotencyKey::new(
        &RunId::from("run-1"),
        "echo",
        flow_runtime::tool::Visit::FIRST,
        call,
    )
}

// ---------------------------------------------------------------------------------------------
// Retries and timeouts.

#[tokio::test]
async fn a_503_is_retried_after_the_wait_retry_after_asks_for() {
    let (server, url) = Server::start(Behaviour {
        fail_first: 1,
        retry_after: Some(1),
        ..Behaviour::default()
    })
    .await;
    // The backoff alone would wait at most 1 ms: only Retry-After explains a 1 s gap.
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().retry(quick_retry(3)).build(),
    );

    let answer = tool.call(&key(0), ask("hi")).await.unwrap();

    assert_eq!(answer.echo, "hi");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert_eq!(seen[0].attempt.as_deref(), Some("1"));
    assert_eq!(seen[1].attempt.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let (server, url) = Server::start(Behaviour {
        fail_first: usize::MAX,
        fail_status: StatusCode::BAD_REQUEST,
        ..Behaviour::default()
    })
    .await;
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().retry(quick_retry(5)).build(),
    );

    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    let CallError::Rejected {
        tool,
        attempt,
        source,
    } = &err
    else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!((*tool, *attempt), ("echo", 1));
    assert_eq!(source.to_string(), "server answered 400 Bad Request");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_up_to_max_attempts() {
    let (server, url) = Server::start(Behaviour {
        fail_first: usize::MAX,
        ..Behaviour::default()
    })
    .await;
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().retry(quick_retry(3)).build(),
    );

    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    assert!(
        matches!(
            err,
            CallError::GaveUp {
                tool: "echo",
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn a_retry_after_past_max_elapsed_gives_up_at_once() {
    let (server, url) = Server::start(Behaviour {
        fail_first: usize::MAX,
        retry_after: Some(5),
        ..Behaviour::default()
    })
    .await;
    let retry = quick_retry(10).max_elapsed(Duration::from_millis(500));
    let tool = PolicyTool::new(Echo::new(&url), ToolPolicy::builder().retry(retry).build());

    let started = Instant::now();
    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    assert!(
        matches!(err, CallError::GaveUp { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "it slept anyway"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn an_attempt_longer_than_the_timeout_is_abandoned_and_retried() {
    let (server, url) = Server::start(Behaviour {
        sleep: Duration::from_secs(3),
        ..Behaviour::default()
    })
    .await;
    let policy = ToolPolicy::builder()
        .timeout(Duration::from_millis(100))
        .retry(quick_retry(2))
        .build();
    let tool = PolicyTool::new(Echo::new(&url), policy);

    let started = Instant::now();
    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    assert!(
        matches!(err, CallError::TimedOut { tool: "echo", attempts: 2, timeout } if timeout == Duration::from_millis(100)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn the_idempotency_key_is_the_same_for_every_attempt_of_a_call() {
    let (server, url) = Server::start(Behaviour {
        fail_first: 2,
        ..Behaviour::default()
    })
    .await;
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().retry(quick_retry(3)).build(),
    );

    tool.call(&key(0), ask("first")).await.unwrap();
    tool.call(&key(1), ask("second")).await.unwrap();

    let keys: Vec<_> = server
        .seen()
        .into_iter()
        .map(|s| s.idempotency_key.unwrap())
        .collect();
    let first = key(0).to_string();
    let second = key(1).to_string();
    assert_eq!(
        keys,
        [first.clone(), first.clone(), first.clone(), second.clone()]
    );
    assert_ne!(first, second);
}

/// Always busy; records when each attempt started. In-process, so that paused time measures
/// the backoff alone.
#[derive(Default)]
struct Busy(Mutex<Vec<Instant>>);

impl Tool for Busy {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "busy";
    const DESCRIPTION: &'static str = "Always busy.";

    async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<(), ToolError> {
        self.0.lock().unwrap().push(Instant::now());
        Err(ToolError::transient("busy"))
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_waits_are_random_below_the_capped_exponential_bound() {
    let retry = Retry::exponential(Duration::from_millis(100))
        .max_attempts(4)
        .max_delay(Duration::from_millis(300));
    let tool = PolicyTool::new(Busy::default(), ToolPolicy::builder().retry(retry).build());

    for call in 0..20 {
        let err = tool.call(&key(call), ()).await.unwrap_err();
        assert!(
            matches!(err, CallError::GaveUp { attempts: 4, .. }),
            "{err:?}"
        );
    }

    let times = tool.tool().0.lock().unwrap().clone();
    let mut first_waits = Vec::new();
    for call in times.chunks(4) {
        let waits: Vec<_> = call.windows(2).map(|w| w[1] - w[0]).collect();
        for (wait, bound) in waits.iter().zip([100, 200, 300]) {
            assert!(*wait <= Duration::from_millis(bound), "{waits:?}");
        }
        first_waits.push(waits[0]);
    }
    // Full jitter: the waits are spread out, not the same for every caller.
    first_waits.sort();
    first_waits.dedup();
    assert!(first_waits.len() > 10, "{first_waits:?}");
}

#[tokio::test(start_paused = true)]
async fn no_retry_starts_after_max_elapsed() {
    let retry = Retry::exponential(Duration::from_millis(100))
        .max_attempts(100)
        .max_delay(Duration::from_millis(100))
        .max_elapsed(Duration::from_secs(1));
    let tool = PolicyTool::new(Busy::default(), ToolPolicy::builder().retry(retry).build());

    let started = Instant::now();
    let err = tool.call(&key(0), ()).await.unwrap_err();

    let times = tool.tool().0.lock().unwrap().clone();
    assert!(matches!(err, CallError::GaveUp { attempts, .. } if attempts as usize == times.len()));
    assert!(times.len() > 10, "only {} attempts", times.len());
    assert!(*times.last().unwrap() - started <= Duration::from_secs(1));
    assert!(started.elapsed() <= Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// Limits.

/// Checks GCRA's promise on admission times: in any window, at most `burst` attempts plus one
/// per full `period` of the window's length.
fn assert_within_rate(times: &[Instant], period: Duration, burst: u32) {
    let mut times = times.to_vec();
    times.sort();
    for i in 0..times.len() {
        for j in i..times.len() {
            let count = u32::try_from(j - i + 1).unwrap();
            let span = times[j] - times[i];
            let allowed = burst + u32::try_from(span.as_nanos() / period.as_nanos()).unwrap();
            assert!(
                count <= allowed,
                "{count} attempts within {span:?}, but at most {allowed} are allowed"
            );
        }
    }
}

// Paused time: the rate limiter follows tokio's clock, so admissions are timed exactly while
// the requests still go over loopback.
#[tokio::test(start_paused = true)]
async fn the_rate_limit_holds_for_concurrent_callers() {
    let (server, url) = Server::start(Behaviour::default()).await;
    let limit = RateLimit::per_second(10).burst(3);
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().rate_limit(limit).build(),
    );

    let started = Instant::now();
    let mut callers = JoinSet::new();
    for caller in 0..4 {
        let tool = tool.clone();
        callers.spawn(async move {
            for call in 0..5 {
                tool.call(&key(caller * 10 + call), ask("hi"))
                    .await
                    .unwrap();
            }
        });
    }
    callers.join_all().await;

    let times = tool.tool().started.lock().unwrap().clone();
    assert_eq!(times.len(), 20);
    assert_eq!(server.seen().len(), 20);
    assert_within_rate(&times, Duration::from_millis(100), 3);
    // And not slower than it needs to be: 3 at once, then one per 100 ms.
    let last = *times.iter().max().unwrap() - started;
    assert!(
        last <= Duration::from_millis(1_750),
        "last call after {last:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_key_has_its_own_rate_budget() {
    let (_server, url) = Server::start(Behaviour::default()).await;
    let policy = ToolPolicy::builder()
        .rate_limit_per_key(RateLimit::per_second(5).burst(1))
        .build();
    let tool = PolicyTool::new(Echo::new(&url), policy);

    let started = Instant::now();
    let mut tenants = JoinSet::new();
    for (n, tenant) in ["acme", "globex"].into_iter().enumerate() {
        let tool = tool.clone();
        tenants.spawn(async move {
            let mut times = Vec::new();
            for call in 0..4 {
                let idempotency = key(u32::try_from(n).unwrap() * 10 + call);
                tool.call_for(tenant, &idempotency, ask(tenant))
                    .await
                    .unwrap();
                times.push(Instant::now());
            }
            times
        });
    }
    let per_tenant = tenants.join_all().await;

    for times in &per_tenant {
        assert_within_rate(times, Duration::from_millis(200), 1);
    }
    // Together: 8 calls in the time of 4, which one shared budget could not do.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1_000), "took {elapsed:?}");
    assert_within_rate(
        &tool.tool().started.lock().unwrap(),
        Duration::from_millis(100),
        2,
    );
}

/// Answers at once.
struct Ping;

impl Tool for Ping {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "ping";
    const DESCRIPTION: &'static str = "Answers at once.";

    async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<(), ToolError> {
        Ok(())
    }
}

/// The builder takes any concurrency (it takes 0 as 1), but tokio's semaphore underneath holds
/// at most `usize::MAX >> 3` permits: `concurrency(usize::MAX)` panicked in `PolicyTool::new`.
#[tokio::test]
async fn the_largest_concurrency_is_taken_without_panicking() {
    let policy = ToolPolicy::builder().concurrency(usize::MAX).build();
    let ping = PolicyTool::new(Ping, policy);
    ping.call(&key(0), ()).await.unwrap();
}

/// governor computes in `u64` nanoseconds, unchecked: a period of `Duration::MAX`, or
/// `per_minute(1).burst(u32::MAX)` (a minute times four billion), panicked in
/// `PolicyTool::new` or at the first call (a release build would wrap, and let calls through).
/// Such limits are now reduced to what it holds, never loosened below one call per period.
#[tokio::test(start_paused = true)]
async fn the_longest_rate_limits_are_taken_without_panicking() {
    let forever = RateLimit::every(Duration::MAX);
    for limit in [
        forever,
        forever.burst(2),
        RateLimit::per_minute(1).burst(u32::MAX),
    ] {
        let policy = ToolPolicy::builder()
            .rate_limit(limit)
            .rate_limit_per_key(limit)
            .build();
        let ping = PolicyTool::new(Ping, policy);
        ping.call_for("tenant", &key(0), ()).await.unwrap();
    }
    // One call per period of a century or more: the next one waits past its deadline.
    let ping = PolicyTool::new(Ping, ToolPolicy::builder().rate_limit(forever).build());
    ping.call(&key(0), ()).await.unwrap();
    let err = ping.call(&key(1), ()).await.unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded { .. }), "{err:?}");
    assert!(forever.period() > Duration::from_secs(100 * 365 * 24 * 3600));
}

#[tokio::test]
async fn no_more_than_the_concurrency_limit_are_in_flight() {
    let (server, url) = Server::start(Behaviour {
        sleep: Duration::from_millis(150),
        ..Behaviour::default()
    })
    .await;
    let tool = PolicyTool::new(
        Echo::new(&url),
        ToolPolicy::builder().concurrency(3).build(),
    );

    let mut calls = JoinSet::new();
    for call in 0..9 {
        let tool = tool.clone();
        calls.spawn(async move { tool.call(&key(call), ask("hi")).await.unwrap() });
    }
    calls.join_all().await;

    assert_eq!(server.seen().len(), 9);
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------------
// Credentials.

async fn authorised_call(auth: Auth) -> Seen {
    let (server, url) = Server::start(Behaviour::default()).await;
    let tool = PolicyTool::new(Echo::new(&url), ToolPolicy::builder().auth(auth).build());
    tool.call(&key(0), ask("hi")).await.unwrap();
    let mut seen = server.seen();
    assert_eq!(seen.len(), 1);
    seen.remove(0)
}

#[tokio::test]
async fn a_bearer_token_from_a_file_is_sent_trimmed() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "t0ken-from-file").unwrap();

    let seen = authorised_call(Auth::bearer(Credential::from_file(file.path()))).await;

    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer t0ken-from-file")
    );
    assert_eq!(seen.api_key, None);
}

#[tokio::test]
async fn an_api_key_goes_in_its_own_header() {
    let seen = authorised_call(Auth::api_key("x-api-key", Credential::new("k3y"))).await;

    assert_eq!(seen.api_key.as_deref(), Some("k3y"));
    assert_eq!(seen.authorization, None);
}

#[tokio::test]
async fn basic_auth_encodes_user_and_password() {
    let seen = authorised_call(Auth::basic("ada", Credential::new("s3cret"))).await;

    // base64("ada:s3cret")
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Basic YWRhOnMzY3JldA==")
    );
}

#[tokio::test]
async fn a_credential_from_the_environment_is_read_at_the_call() {
    // The tests cannot set variables (that is `unsafe`), but every process has PATH.
    let path = std::env::var("PATH").unwrap();

    let seen = authorised_call(Auth::api_key("x-api-key", Credential::from_env("PATH"))).await;

    assert_eq!(seen.api_key.as_deref(), Some(path.trim()));
}

#[tokio::test]
async fn a_missing_credential_fails_before_any_request() {
    let (server, url) = Server::start(Behaviour::default()).await;
    let missing_file = std::env::temp_dir().join("flow-tests-no-such-credential-file");
    let cases = [
        (
            Credential::from_env("FLOW_TESTS_SURELY_UNSET_TOKEN"),
            "tool `echo` was not called: its credential (environment variable \
             `FLOW_TESTS_SURELY_UNSET_TOKEN`) could not be loaded"
                .to_owned(),
        ),
        (
            Credential::from_file(&missing_file),
            format!(
                "tool `echo` was not called: its credential (file `{}`) could not be loaded",
                missing_file.display()
            ),
        ),
    ];

    for (credential, message) in cases {
        let policy = ToolPolicy::builder()
            .auth(Auth::bearer(credential))
            .retry(quick_retry(3))
            .build();
        let tool = PolicyTool::new(Echo::new(&url), policy);

        let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

        assert!(
            matches!(err, CallError::Credential { tool: "echo", .. }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), message);
        assert!(tool.tool().started.lock().unwrap().is_empty());
    }
    assert_eq!(server.seen().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// Secrets stay secret.

#[tokio::test]
async fn no_secret_reaches_debug_output_errors_or_traces() {
    const SECRET: &str = "s3cret-must-not-leak";
    let captured = Captured::default();
    let _guard = captured.install();

    // A call that is retried once (a traced warning), then succeeds.
    let (_server, url) = Server::start(Behaviour {
        fail_first: 1,
        ..Behaviour::default()
    })
    .await;
    let auth = Auth::bearer(Credential::new(SECRET));
    let policy = ToolPolicy::builder()
        .auth(auth.clone())
        .retry(quick_retry(3))
        .build();
    let tool = PolicyTool::new(Echo::new(&url), policy.clone());
    tool.call(&key(0), ask("hi")).await.unwrap();

    // A call that fails, so that there is an error to print.
    let (_server, url) = Server::start(Behaviour {
        fail_first: usize::MAX,
        ..Behaviour::default()
    })
    .await;
    let failing = PolicyTool::new(Echo::new(&url), policy.clone());
    let err = failing.call(&key(1), ask("hi")).await.unwrap_err();

    let header = auth.header().unwrap();
    let ctx = ToolCtx::new("echo", key(0)).with_auth(header.clone());
    let printed = [
        format!(
            "{tool:?} {policy:?} {auth:?} {:?} {}",
            auth.credential(),
            auth.credential()
        ),
        format!(
            "{header:?} {:?} {:?} {ctx:?}",
            header.value(),
            header.secret()
        ),
        error_chain(&err),
    ]
    .join("\n");
    let traces = captured.text();

    for text in [&printed, &traces] {
        assert!(!text.contains(SECRET), "the secret leaked into:\n{text}");
    }
    // The traces are there, with their fields: the test looked at real output.
    assert!(traces.contains("transient failure; retrying"), "{traces}");
    assert!(traces.contains("tool=\"echo\""), "{traces}");
    assert!(traces.contains("attempt=2"), "{traces}");
    assert!(traces.contains(&key(0).to_string()), "{traces}");
}
