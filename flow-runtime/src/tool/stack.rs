use crate::tool::error::AttemptError;
use crate::tool::limit::Limiters;
use crate::tool::policy::Ending;
use crate::tool::{CallError, IdempotencyKey, Redactor, Tool, ToolCtx, ToolPolicy, ToolSpec};
use std::fmt;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Instrument as _;

/// A tool with its [`ToolPolicy`] applied: the way a workflow calls a tool.
///
/// [`call`](PolicyTool::call) loads the credential, then makes attempts as the policy says
/// (concurrency slot, rate limit, timeout, retries with backoff), each in a `tool` tracing span
/// with the fields `tool`, `idempotency_key` and `attempt`. Secrets are never recorded.
///
/// The credential the call sent never leaves it inside an error: before a tool's error reaches
/// the retry log, the [`CallError`], the run's history or its store, every form of the secret
/// the call sent (as it is, the header's token or base64 `user:password`, percent-encoded,
/// JSON-escaped, base64) is replaced by `[REDACTED]` in its message and its sources, so a
/// service that echoes the request back in an error cannot leak it.
///
/// Cloning is cheap and shares everything, limits included: clone it into tasks rather than
/// making a second `PolicyTool` for the same tool, which would have limits of its own.
///
/// ```
/// use flow_runtime::state::RunId;
/// use flow_runtime::tool::{
///     IdempotencyKey, PolicyTool, Retry, Tool, ToolCtx, ToolError, ToolPolicy, Visit,
/// };
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// /// Fails twice with a transient error, then answers.
/// #[derive(Default)]
/// struct Flaky(AtomicU32);
///
/// impl Tool for Flaky {
///     type Input = String;
///     type Output = String;
///     const NAME: &'static str = "flaky";
///     const DESCRIPTION: &'static str = "Echoes its input, eventually.";
///
///     async fn call(&self, ctx: &ToolCtx, input: String) -> Result<String, ToolError> {
///         if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
///             return Err(ToolError::transient("busy"));
///         }
///         Ok(format!("{input} (attempt {})", ctx.attempt()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), flow_runtime::tool::CallError> {
/// let policy = ToolPolicy::builder()
///     .timeout(Duration::from_secs(5))
///     .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
///     .build();
/// let flaky = PolicyTool::new(Flaky::default(), policy);
///
/// let key = IdempotencyKey::new(&RunId::from("run-1"), "echo", Visit::FIRST, 0);
/// assert_eq!(flaky.call(&key, "hi".into()).await?, "hi (attempt 3)");
/// # Ok(())
/// # }
/// ```
pub struct PolicyTool<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    tool: T,
    policy: ToolPolicy,
    limiters: Limiters,
    slots: Option<Semaphore>,
}

impl<T> Clone for PolicyTool<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Tool> fmt::Debug for PolicyTool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyTool")
            .field("tool", &T::NAME)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Tool> PolicyTool<T> {
    /// `tool` called as `policy` says, with limits of its own.
    pub fn new(tool: T, policy: ToolPolicy) -> Self {
        let limiters = Limiters::new(policy.rate_limit, policy.rate_limit_per_key);
        let slots = policy.concurrency.map(Semaphore::new);
        Self {
            inner: Arc::new(Inner {
                tool,
                policy,
                limiters,
                slots,
            }),
        }
    }

    /// The tool.
    #[must_use]
    pub fn tool(&self) -> &T {
        &self.inner.tool
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &ToolPolicy {
        &self.inner.policy
    }

    /// The tool as a model sees it.
    #[must_use]
    pub fn spec(&self) -> ToolSpec {
        ToolSpec::of::<T>()
    }

    /// Calls the tool under its policy, with idempotency key `key` (the same for every
    /// attempt: derive it with [`IdempotencyKey::new`]). A per-key rate limit does not apply;
    /// see [`call_for`](PolicyTool::call_for).
    ///
    /// # Errors
    ///
    /// The credential could not be loaded (the tool was not called); the tool failed with a
    /// permanent error; or it kept failing or timing out until the retry policy gave up. See
    /// [`CallError`].
    pub async fn call(
        &self,
        key: &IdempotencyKey,
        input: T::Input,
    ) -> Result<T::Output, CallError> {
        self.call_with(None, key, input).await
    }

    /// [`call`](PolicyTool::call), counting every attempt against `rate_key`'s own budget
    /// (a tenant, a user, an API account) as well as the tool's: see
    /// [`ToolPolicyBuilder::rate_limit_per_key`](crate::tool::ToolPolicyBuilder::rate_limit_per_key).
    ///
    /// # Errors
    ///
    /// As [`call`](PolicyTool::call).
    pub async fn call_for(
        &self,
        rate_key: &str,
        key: &IdempotencyKey,
        input: T::Input,
    ) -> Result<T::Output, CallError> {
        self.call_with(Some(rate_key), key, input).await
    }

    /// Forgets the per-key rate budgets that have fully refilled (they would let a burst
    /// through anyway), so that memory does not grow with every key ever seen. Call it now and
    /// then when keys come and go.
    pub fn forget_idle_keys(&self) {
        self.inner.limiters.forget_idle_keys();
    }

    async fn call_with(
        &self,
        rate_key: Option<&str>,
        key: &IdempotencyKey,
        input: T::Input,
    ) -> Result<T::Output, CallError> {
        self.call_counted(rate_key, key, input).await.0
    }

    /// The call and how many attempts it made (0 when none was: a missing credential).
    pub(crate) async fn call_counted(
        &self,
        rate_key: Option<&str>,
        key: &IdempotencyKey,
        input: T::Input,
    ) -> (Result<T::Output, CallError>, u32) {
        let span = crate::driver::trace::info_span_if_traced!(
            "tool",
            tool = T::NAME,
            idempotency_key = %key,
            attempt = tracing::field::Empty,
        );
        self.attempts(rate_key, key, input, &span)
            .instrument(span.clone())
            .await
    }

    async fn attempts(
        &self,
        rate_key: Option<&str>,
        key: &IdempotencyKey,
        input: T::Input,
        span: &tracing::Span,
    ) -> (Result<T::Output, CallError>, u32) {
        let inner = &*self.inner;
        let policy = &inner.policy;
        let auth = match &policy.auth {
            None => None,
            Some(auth) => match auth.header() {
                Ok(header) => Some(Arc::new(header)),
                Err(source) => {
                    let error = CallError::Credential {
                        tool: T::NAME,
                        credential: auth.credential().to_string(),
                        source,
                    };
                    return (Err(error), 0);
                }
            },
        };

        let auth = &auth;
        // The closure owns the input (cloned per attempt), so the call needs no `Sync` input.
        let (attempts, ended) = policy
            .retry
            .drive(policy.bounds(), span, move |attempt| {
                let ctx = ToolCtx::for_attempt(T::NAME, key.clone(), attempt, auth.clone());
                let input = input.clone();
                async move {
                    // Redacted here, before the retry loop logs it; the secret's forms are
                    // worked out only when there is an error to clean.
                    self.attempt(rate_key, &ctx, input)
                        .await
                        .map_err(|e| match e {
                            AttemptError::Tool(e) => {
                                AttemptError::Tool(e.redacted(&Redactor::for_auth(auth.as_deref())))
                            }
                            timed_out @ AttemptError::TimedOut(_) => timed_out,
                        })
                }
            })
            .await;
        let result = ended.map_err(|ending| match ending {
            Ending::Rejected(source) => CallError::Rejected {
                tool: T::NAME,
                attempt: attempts,
                source,
            },
            Ending::GaveUp(source) => CallError::GaveUp {
                tool: T::NAME,
                attempts,
                source,
            },
            Ending::TimedOut(timeout) => CallError::TimedOut {
                tool: T::NAME,
                attempts,
                timeout,
            },
            Ending::DeadlineExceeded(deadline) => CallError::DeadlineExceeded {
                tool: T::NAME,
                attempts,
                deadline,
            },
            Ending::RetryAfterTooLong { asked, max, error } => CallError::RetryAfterTooLong {
                tool: T::NAME,
                attempts,
                asked,
                max,
                source: error,
            },
        });
        (result, attempts)
    }

    /// One attempt: a slot, the rate limit, the call within the timeout.
    async fn attempt(
        &self,
        rate_key: Option<&str>,
        ctx: &ToolCtx,
        input: T::Input,
    ) -> Result<T::Output, AttemptError> {
        let inner = &*self.inner;
        // `acquire` fails only on a closed semaphore, and this one is never closed.
        let _slot = match &inner.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        inner.limiters.until_ready(rate_key).await;
        let call = inner.tool.call(ctx, input);
        match inner.policy.timeout {
            None => call.await.map_err(AttemptError::Tool),
            Some(timeout) => match tokio::time::timeout(timeout, call).await {
                Ok(result) => result.map_err(AttemptError::Tool),
                Err(_) => Err(AttemptError::TimedOut(timeout)),
            },
        }
    }
}
