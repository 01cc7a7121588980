//! `tool::ServiceTool`: tower services, middleware and all, called as tools through a
//! `PolicyTool` (timeouts from tower's `Timeout` are transient and retried, the service's own
//! errors classified as it says, the call's context reaches a service that asks for it,
//! middleware whose clones share state keeps working); and a `PolicyTool` called as a tower
//! service.
//!
//! Everything runs in-process, so tokio's paused clock times tower's timeouts and the policy's
//! backoff exactly and instantly.

use flow_runtime::tool::{
    Auth, CallError, Credential, ExposeSecret, IdempotencyKey, PolicyTool, Retry, ServiceTool,
    ServiceToolInfo, Tool, ToolCtx, ToolError, ToolPolicy, ToolRequest, classify_service_error,
};
use flow_tests::quick_retry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

/// Doubles a number.
struct Double;

impl ServiceToolInfo for Double {
    type Input = i64;
    type Output = i64;
    const NAME: &'static str = "double";
    const DESCRIPTION: &'static str = "Doubles a number.";
}

fn key(call: u32) -> IdempotencyKey {
    IdempotencyKey::from(format!("call-{call}"))
}

fn retrying(attempts: u32) -> ToolPolicy {
    ToolPolicy::builder().retry(quick_retry(attempts)).build()
}

/// A service that doubles its input after `delays[n]` on its n-th call (the last delay
/// repeats), behind a 100 ms tower timeout; it counts its calls.
fn slow_double(
    delays: &'static [u64],
) -> (
    Arc<AtomicUsize>,
    impl tower::Service<i64, Response = i64, Error = BoxError, Future: Send> + Clone + Send + Sync,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .service_fn(move |n: i64| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            let delay = delays[call.min(delays.len() - 1)];
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Ok::<_, ToolError>(2 * n)
            }
        });
    (calls, service)
}

#[tokio::test(start_paused = true)]
async fn a_service_with_a_timeout_layer_answers_as_a_tool() {
    let (calls, service) = slow_double(&[10]);
    let tool = PolicyTool::new(ServiceTool::new(Double, service), ToolPolicy::default());

    assert_eq!(tool.call(&key(0), 21).await.unwrap(), 42);
    assert_eq!(tool.call(&key(1), -4).await.unwrap(), -8);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(tool.spec().name, "double");
    let debug = format!("{:?}", tool.tool());
    assert!(
        debug.starts_with(r#"ServiceTool { tool: "double", service: "tower::timeout::Timeout<"#),
        "{debug}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_tower_timeout_is_transient_and_retried() {
    // The first call takes 500 ms, past the 100 ms timeout; the second 10 ms.
    let (calls, service) = slow_double(&[500, 10]);
    let tool = PolicyTool::new(ServiceTool::new(Double, service), retrying(3));

    let started = Instant::now();
    assert_eq!(tool.call(&key(0), 21).await.unwrap(), 42);

    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The timeout fired at 100 ms: the slow call was abandoned, not waited for.
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_that_always_times_out_gives_up_with_tower_s_error_underneath() {
    let (calls, service) = slow_double(&[500]);
    let tool = PolicyTool::new(ServiceTool::new(Double, service), retrying(3));

    let err = tool.call(&key(0), 21).await.unwrap_err();

    let CallError::GaveUp {
        tool: "double",
        attempts: 3,
        source,
    } = &err
    else {
        panic!("expected GaveUp after 3 attempts, got {err:?}");
    };
    assert!(source.is_transient());
    assert_eq!(source.to_string(), "the service failed");
    let cause = std::error::Error::source(source).unwrap();
    assert!(cause.is::<tower::timeout::error::Elapsed>(), "{cause:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn tool_errors_keep_their_class_and_wait_through_the_middleware() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .service_fn(move |n: i64| {
            let attempt = {
                let mut seen = seen.lock().unwrap();
                seen.push(Instant::now());
                seen.len()
            };
            async move {
                match (n, attempt) {
                    (0, _) => Err(ToolError::permanent("zero has no double worth asking for")),
                    (_, 1) => Err(ToolError::transient("warming up")
                        .with_retry_after(Duration::from_millis(300))),
                    _ => Ok(2 * n),
                }
            }
        });
    let tool = PolicyTool::new(ServiceTool::new(Double, service), retrying(3));

    assert_eq!(tool.call(&key(0), 5).await.unwrap(), 10);
    let err = tool.call(&key(1), 0).await.unwrap_err();

    let times = calls.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    // The transient error's retry-after (300 ms), not the 1 ms backoff.
    assert_eq!(times[1] - times[0], Duration::from_millis(300));
    let CallError::Rejected {
        attempt: 1, source, ..
    } = &err
    else {
        panic!("expected Rejected on attempt 1, got {err:?}");
    };
    assert_eq!(source.to_string(), "zero has no double worth asking for");
}

#[derive(Debug, thiserror::Error)]
#[error("the pool failed")]
struct PoolError(#[source] ToolError);

#[tokio::test(start_paused = true)]
async fn a_tool_error_under_another_error_keeps_its_class_and_wait() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    // As a `Buffer` wraps its service's errors.
    let service = tower::service_fn(move |n: i64| {
        let attempt = {
            let mut seen = seen.lock().unwrap();
            seen.push(Instant::now());
            seen.len()
        };
        async move {
            match (n, attempt) {
                (_, 1) => Err(PoolError(
                    ToolError::transient("pool draining")
                        .with_retry_after(Duration::from_millis(200)),
                )),
                (0, _) => Err(PoolError(ToolError::permanent("zero"))),
                _ => Ok(2 * n),
            }
        }
    });
    let tool = PolicyTool::new(ServiceTool::new(Double, service), retrying(3));

    assert_eq!(tool.call(&key(0), 5).await.unwrap(), 10);
    let err = tool.call(&key(1), 0).await.unwrap_err();

    let times = attempts.lock().unwrap().clone();
    assert_eq!(times[1] - times[0], Duration::from_millis(200));
    let CallError::Rejected {
        attempt: 1, source, ..
    } = &err
    else {
        panic!("expected Rejected on attempt 1, got {err:?}");
    };
    assert_eq!(source.to_string(), "zero");
    let cause = std::error::Error::source(source).unwrap();
    assert_eq!(cause.to_string(), "the pool failed");
}

// ---------------------------------------------------------------------------------------------
// Errors of the user's own type.

#[derive(Debug, thiserror::Error)]
enum LedgerError {
    #[error("account {0} does not exist")]
    NoSuchAccount(i64),
    #[error("the ledger is being compacted")]
    Compacting,
}

/// An account's balance; classifies the ledger's errors itself.
struct Balance;

impl ServiceToolInfo for Balance {
    type Input = i64;
    type Output = i64;
    const NAME: &'static str = "balance";
    const DESCRIPTION: &'static str = "An account's balance, in cents.";

    fn classify(error: BoxError) -> ToolError {
        match error.downcast::<LedgerError>() {
            Ok(e) if matches!(*e, LedgerError::Compacting) => {
                ToolError::transient("ledger busy").with_source(e)
            }
            Ok(e) => ToolError::permanent("no such account").with_source(e),
            Err(other) => classify_service_error(other),
        }
    }
}

/// A ledger that is compacting for its first `compacting` calls; account 0 does not exist.
fn ledger(
    compacting: usize,
) -> (
    Arc<AtomicUsize>,
    impl tower::Service<i64, Response = i64, Error = BoxError, Future: Send> + Clone + Send + Sync,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .service_fn(move |account: i64| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if call < compacting {
                    Err(LedgerError::Compacting)
                } else if account == 0 {
                    Err(LedgerError::NoSuchAccount(account))
                } else {
                    Ok(account * 100)
                }
            }
        });
    (calls, service)
}

#[tokio::test(start_paused = true)]
async fn the_user_s_transient_errors_are_retried() {
    let (calls, service) = ledger(2);
    let tool = PolicyTool::new(ServiceTool::new(Balance, service), retrying(3));

    assert_eq!(tool.call(&key(0), 7).await.unwrap(), 700);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_user_s_permanent_errors_are_not_retried() {
    let (calls, service) = ledger(0);
    let tool = PolicyTool::new(ServiceTool::new(Balance, service), retrying(3));

    let err = tool.call(&key(0), 0).await.unwrap_err();

    let CallError::Rejected {
        tool: "balance",
        attempt: 1,
        source,
    } = &err
    else {
        panic!("expected Rejected on attempt 1, got {err:?}");
    };
    assert_eq!(source.to_string(), "no such account");
    let cause = std::error::Error::source(source).unwrap();
    assert_eq!(cause.to_string(), "account 0 does not exist");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_user_s_classification_falls_back_on_the_default_for_middleware_errors() {
    // A ledger slower than its timeout: the `Elapsed` is not a `LedgerError`.
    let service = ServiceBuilder::new()
        .timeout(Duration::from_millis(10))
        .service_fn(|account: i64| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, LedgerError>(account)
        });
    let tool = PolicyTool::new(ServiceTool::new(Balance, service), retrying(2));

    let err = tool.call(&key(0), 7).await.unwrap_err();

    assert!(
        matches!(err, CallError::GaveUp { attempts: 2, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The call's context, and middleware state.

#[tokio::test(start_paused = true)]
async fn a_service_over_tool_requests_sees_the_key_the_attempt_and_the_credential() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let service = tower::service_fn(move |request: ToolRequest<i64>| {
        let ctx = &request.ctx;
        log.lock().unwrap().push((
            ctx.idempotency_key().to_string(),
            ctx.attempt(),
            ctx.secret().map(|s| s.expose_secret().to_owned()),
        ));
        let attempt = ctx.attempt();
        async move {
            if attempt < 2 {
                Err(ToolError::transient("not yet"))
            } else {
                Ok(2 * request.input)
            }
        }
    });
    let policy = ToolPolicy::builder()
        .auth(Auth::bearer(Credential::new("t0ken")))
        .retry(Retry::exponential(Duration::from_millis(1)))
        .build();
    let tool = PolicyTool::new(ServiceTool::new(Double, service), policy);

    assert_eq!(tool.call(&key(9), 4).await.unwrap(), 8);

    let seen = seen.lock().unwrap().clone();
    let secret = Some("t0ken".to_owned());
    assert_eq!(
        seen,
        [
            ("call-9".to_owned(), 1, secret.clone()),
            ("call-9".to_owned(), 2, secret),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_holds_across_calls_and_a_boxed_service_is_a_tool() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, max) = (Arc::clone(&in_flight), Arc::clone(&most));
    // `BoxCloneService` is `Send` but not `Sync`. The timeout's `BoxError`s are mapped to
    // `ToolError`s before boxing: a `dyn` in the service's type would make the spawned calls
    // below fail the `Send` check (rust-lang/rust#110338).
    let service = ServiceBuilder::new()
        .boxed_clone()
        .map_err(classify_service_error)
        .concurrency_limit(2)
        .timeout(Duration::from_secs(1))
        .service_fn(move |n: i64| {
            let (now, max) = (Arc::clone(&now), Arc::clone(&max));
            async move {
                max.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, ToolError>(2 * n)
            }
        });
    let tool = PolicyTool::new(ServiceTool::new(Double, service), ToolPolicy::default());

    let started = Instant::now();
    let mut calls = JoinSet::new();
    for call in 0..6 {
        let tool = tool.clone();
        calls.spawn(async move { tool.call(&key(call), i64::from(call)).await.unwrap() });
    }
    let mut answers = calls.join_all().await;
    answers.sort_unstable();

    assert_eq!(answers, [0, 2, 4, 6, 8, 10]);
    assert_eq!(most.load(Ordering::SeqCst), 2);
    // Six calls, two at a time, 50 ms each.
    assert_eq!(started.elapsed(), Duration::from_millis(150));
}

// ---------------------------------------------------------------------------------------------
// The other way: a tool with its policy as a tower service.

/// Fails once, then doubles.
#[derive(Default)]
struct FlakyDouble(AtomicUsize);

impl Tool for FlakyDouble {
    type Input = i64;
    type Output = i64;
    const NAME: &'static str = "flaky_double";
    const DESCRIPTION: &'static str = "Doubles a number, eventually.";

    async fn call(&self, _ctx: &ToolCtx, n: i64) -> Result<i64, ToolError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ToolError::transient("cold start"));
        }
        if n < 0 {
            return Err(ToolError::permanent("negative"));
        }
        Ok(2 * n)
    }
}

#[tokio::test(start_paused = true)]
async fn a_policy_tool_is_a_tower_service_with_its_policy() {
    let tool = PolicyTool::new(FlakyDouble::default(), retrying(2));
    let service = ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .service(tool.clone());

    let answer = service.clone().oneshot((key(0), 21)).await.unwrap();
    let err = service.oneshot((key(1), -1)).await.unwrap_err();

    assert_eq!(answer, 42);
    assert_eq!(tool.tool().0.load(Ordering::SeqCst), 3);
    let err = err.downcast::<CallError>().unwrap();
    assert!(
        matches!(
            *err,
            CallError::Rejected {
                tool: "flaky_double",
                attempt: 1,
                ..
            }
        ),
        "{err:?}"
    );
}
