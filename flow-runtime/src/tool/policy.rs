use crate::tool::error::AttemptError;
use crate::tool::{Auth, ToolError};
use backon::{BackoffBuilder as _, ExponentialBuilder};
use governor::Quota;
use std::future::Future;
use std::num::NonZeroU32;
use std::time::Duration;

/// How a tool is called: declared once per tool, applied to every call by a
/// [`PolicyTool`](crate::tool::PolicyTool).
///
/// Every part is optional. [`ToolPolicy::default()`] makes one attempt, with no rate or
/// concurrency limit and no credential, but within bounds, so that no server can hold a call
/// (and its run) for ever:
///
/// | bound | default | set with |
/// |-------|---------|----------|
/// | per-attempt timeout | 30 s | [`timeout`](ToolPolicyBuilder::timeout) |
/// | total deadline of a call, retries and waits included | 2 min | [`deadline`](ToolPolicyBuilder::deadline) |
/// | longest `Retry-After` wait honoured | 60 s | [`max_retry_after`](ToolPolicyBuilder::max_retry_after) |
///
/// (A response body size limit belongs to the client that reads it: see
/// `HttpJson::max_response_body`, feature `http`.)
/// `Duration::MAX` turns a bound off.
///
/// For each attempt, in this order, a call
///
/// 1. waits for a [concurrency](ToolPolicyBuilder::concurrency) slot,
/// 2. waits for the [rate limit](ToolPolicyBuilder::rate_limit) (and the
///    [per-key one](ToolPolicyBuilder::rate_limit_per_key)),
/// 3. calls the tool within the [timeout](ToolPolicyBuilder::timeout),
/// 4. frees its slot, and on a transient error or a timeout, waits as the
///    [retry](ToolPolicyBuilder::retry) policy says and starts again.
///
/// The slot is taken before the rate limit so that calls leave at the rate's pace: taken the
/// other way round, calls that passed the limiter one by one could queue for slots and then
/// leave together. The [credential](ToolPolicyBuilder::auth) is loaded once, before the first
/// attempt. The [deadline](ToolPolicyBuilder::deadline) covers all of it: an attempt still
/// going (or waiting for a slot) when it passes is abandoned, and no retry starts that could
/// not begin before it.
///
/// ```
/// use flow_runtime::tool::{Auth, Credential, RateLimit, Retry, ToolPolicy};
/// use std::time::Duration;
///
/// let policy = ToolPolicy::builder()
///     .timeout(Duration::from_secs(10))
///     .retry(
///         Retry::exponential(Duration::from_millis(200))
///             .max_attempts(4)
///             .max_elapsed(Duration::from_secs(30)),
///     )
///     .rate_limit(RateLimit::per_second(10))
///     .rate_limit_per_key(RateLimit::per_minute(60).burst(5))
///     .concurrency(4)
///     .auth(Auth::bearer(Credential::from_env("SEARCH_API_TOKEN")))
///     .build();
/// assert_eq!(policy.timeout(), Some(Duration::from_secs(10)));
/// ```
#[derive(Clone, Debug)]
pub struct ToolPolicy {
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) retry: Retry,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) rate_limit_per_key: Option<RateLimit>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) auth: Option<Auth>,
}

/// The default per-attempt timeout of tools and output sinks.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default deadline of a whole call or delivery, retries and waits included.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_mins(2);
/// The longest `Retry-After` honoured by default.
pub(crate) const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_mins(1);

impl Default for ToolPolicy {
    /// One attempt of at most 30 s, a call of at most 2 min, `Retry-After` honoured up to
    /// 60 s; no rate or concurrency limit, no credential.
    fn default() -> Self {
        Self {
            timeout: Some(DEFAULT_TIMEOUT),
            deadline: DEFAULT_DEADLINE,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            retry: Retry::none(),
            rate_limit: None,
            rate_limit_per_key: None,
            concurrency: None,
            auth: None,
        }
    }
}

impl ToolPolicy {
    /// A builder, starting from the [default](ToolPolicy::default) policy.
    pub fn builder() -> ToolPolicyBuilder {
        ToolPolicyBuilder(Self::default())
    }

    /// The per-attempt timeout (30 s unless set).
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The deadline of a whole call, retries and waits included (2 min unless set).
    #[must_use]
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The longest `Retry-After` wait a call honours (60 s unless set).
    #[must_use]
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    pub(crate) fn bounds(&self) -> Bounds {
        Bounds {
            deadline: self.deadline,
            max_retry_after: self.max_retry_after,
        }
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(&self) -> &Retry {
        &self.retry
    }

    /// The rate limit over all calls.
    #[must_use]
    pub fn rate_limit(&self) -> Option<&RateLimit> {
        self.rate_limit.as_ref()
    }

    /// The rate limit per key.
    #[must_use]
    pub fn rate_limit_per_key(&self) -> Option<&RateLimit> {
        self.rate_limit_per_key.as_ref()
    }

    /// The most attempts in progress at once.
    #[must_use]
    pub fn concurrency(&self) -> Option<usize> {
        self.concurrency
    }

    /// The credential and how it is sent.
    #[must_use]
    pub fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }
}

/// Builds a [`ToolPolicy`]; made by [`ToolPolicy::builder`].
#[derive(Debug)]
#[must_use]
pub struct ToolPolicyBuilder(ToolPolicy);

impl ToolPolicyBuilder {
    /// Each attempt may take at most `timeout` (30 s by default; `Duration::MAX` for no
    /// limit); one that takes longer is abandoned (its future dropped) and counts as a
    /// transient failure.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.0.timeout = Some(timeout);
        self
    }

    /// The whole call, every attempt, slot and rate-limit wait and retry wait included, may
    /// take at most `deadline` (2 min by default; `Duration::MAX` for no limit). An attempt
    /// still going when it passes is abandoned and the call fails with
    /// [`CallError::DeadlineExceeded`](crate::tool::CallError::DeadlineExceeded); a retry
    /// whose wait would end past it is not made (the call fails with the last error).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.0.deadline = deadline;
        self
    }

    /// The longest wait a service may ask for with `Retry-After` (60 s by default;
    /// `Duration::MAX` for no limit). A service that asks for longer is not waited for: the
    /// call fails at once with
    /// [`CallError::RetryAfterTooLong`](crate::tool::CallError::RetryAfterTooLong), which
    /// says how long it asked for, rather than sleeping for hours or retrying before the
    /// service said it would be ready.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.0.max_retry_after = max;
        self
    }

    /// How transient failures and timeouts are retried. Without it, they are not.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.0.retry = retry;
        self
    }

    /// At most this rate of attempts over all calls of the tool.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.0.rate_limit = Some(limit);
        self
    }

    /// At most this rate of attempts for each key (a tenant, a user, an API account), given
    /// with [`PolicyTool::call_for`](crate::tool::PolicyTool::call_for). Each key has its own
    /// budget, kept in memory for as long as the tool is.
    pub fn rate_limit_per_key(mut self, limit: RateLimit) -> Self {
        self.0.rate_limit_per_key = Some(limit);
        self
    }

    /// At most `max` attempts in progress at once (0 is taken as 1, and more than the
    /// semaphore underneath holds, `usize::MAX >> 3`, as that). Calls wait for a slot in the
    /// order they asked for one.
    pub fn concurrency(mut self, max: usize) -> Self {
        self.0.concurrency = Some(max.clamp(1, tokio::sync::Semaphore::MAX_PERMITS));
        self
    }

    /// The credential every call needs, and how it is sent. See [`Auth`].
    pub fn auth(mut self, auth: Auth) -> Self {
        self.0.auth = Some(auth);
        self
    }

    /// The policy.
    #[must_use]
    pub fn build(self) -> ToolPolicy {
        self.0
    }
}

/// How a call retries transient failures: exponential backoff with full jitter, bounded by
/// a number of attempts and, optionally, by the time since the call started.
///
/// The n-th retry waits a random time between zero and `min(max_delay, base × 2ⁿ⁻¹)` ("full
/// jitter", which spreads the retries of many callers evenly instead of in waves), or exactly
/// the time the service asked for when the error carries a
/// [`retry_after`](crate::tool::ToolError::with_retry_after) (up to the policy's
/// [`max_retry_after`](crate::tool::ToolPolicyBuilder::max_retry_after); a longer one ends
/// the call). Permanent errors are never retried.
///
/// A retry is not made when it would start after `max_elapsed` (counted from the start of the
/// call, waits included); the call then fails with the last error.
///
/// ```
/// use flow_runtime::tool::Retry;
/// use std::time::Duration;
///
/// // Up to 5 attempts: waits of at most 100 ms, 200 ms, 400 ms, 800 ms.
/// let retry = Retry::exponential(Duration::from_millis(100))
///     .max_attempts(5)
///     .max_delay(Duration::from_secs(1))
///     .max_elapsed(Duration::from_secs(10));
/// assert_eq!(retry.attempts(), 5);
/// assert_eq!(Retry::none().attempts(), 1);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    max_attempts: u32,
    base: Duration,
    max_delay: Duration,
    max_elapsed: Option<Duration>,
}

impl Default for Retry {
    /// [`Retry::none`].
    fn default() -> Self {
        Self::none()
    }
}

impl Retry {
    /// One attempt, no retry.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            base: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_elapsed: None,
        }
    }

    /// Exponential backoff from `base`: 3 attempts, waits capped at 30 s, no elapsed-time
    /// bound.
    #[must_use]
    pub fn exponential(base: Duration) -> Self {
        Self {
            max_attempts: 3,
            base,
            max_delay: Duration::from_secs(30),
            max_elapsed: None,
        }
    }

    /// At most `n` attempts in all, the first included (0 is taken as 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// No backoff wait longer than `max` (a `retry_after` may still be longer).
    #[must_use]
    pub fn max_delay(mut self, max: Duration) -> Self {
        self.max_delay = max;
        self
    }

    /// No retry starts later than `max` after the call started.
    #[must_use]
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = Some(max);
        self
    }

    /// The most attempts a call makes.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The upper bounds of successive backoff waits, one per retry; each wait is drawn
    /// below its bound by [`full_jitter`].
    pub(crate) fn bounds(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        // backon computes the capped exponential schedule; its own jitter adds a random
        // amount *on top of* each delay, which is not full jitter, so it stays off.
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .without_max_times()
            .build()
    }
}

/// The bounds of a whole call or delivery that [`Retry::drive`] enforces, besides the retry
/// policy's own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// The call may take at most this long in all (`Duration::MAX`: no limit).
    pub(crate) deadline: Duration,
    /// The longest `Retry-After` honoured.
    pub(crate) max_retry_after: Duration,
}

/// How a call [`Retry::drive`] made ended for good.
pub(crate) enum Ending {
    /// A permanent error, on this attempt: not retried.
    Rejected(ToolError),
    /// The last transient error, when the attempts or the time ran out.
    GaveUp(ToolError),
    /// The last attempt timed out after this long, and no retry was left.
    TimedOut(Duration),
    /// The call's deadline (this long) passed during an attempt, which was abandoned.
    DeadlineExceeded(Duration),
    /// The service asked for a wait (`asked`) longer than the longest honoured (`max`).
    RetryAfterTooLong {
        asked: Duration,
        max: Duration,
        error: ToolError,
    },
}

impl Retry {
    /// Makes attempts with `attempt(n)` (`n` from 1) as this policy says: a permanent error
    /// ends at once; a transient error or a timeout is retried after the wait the error asks
    /// for (`Retry-After`, up to `bounds.max_retry_after`) or a full-jitter backoff, while
    /// attempts, elapsed time and the deadline allow. Returns how many attempts were made and
    /// how the call ended. Records `attempt` on `span`. The one retry loop of tools and output
    /// sinks.
    ///
    /// Every duration sum saturates: a service may send any `Retry-After`, and a policy may
    /// say `Duration::MAX`, without overflowing anything.
    pub(crate) async fn drive<T, F, Fut>(
        &self,
        bounds: Bounds,
        span: &tracing::Span,
        mut attempt: F,
    ) -> (u32, Result<T, Ending>)
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let started = tokio::time::Instant::now();
        // `None` when the deadline lies beyond what an `Instant` can hold: no deadline.
        let deadline_at = started.checked_add(bounds.deadline);
        let mut backoff = self.bounds();
        let mut n: u32 = 1;
        loop {
            span.record("attempt", n);
            let outcome = match deadline_at {
                None => attempt(n).await,
                Some(at) => match tokio::time::timeout_at(at, attempt(n)).await {
                    Ok(outcome) => outcome,
                    Err(_) => return (n, Err(Ending::DeadlineExceeded(bounds.deadline))),
                },
            };
            let error = match outcome {
                Ok(output) => return (n, Ok(output)),
                Err(AttemptError::Tool(error)) if !error.is_transient() => {
                    return (n, Err(Ending::Rejected(error)));
                }
                Err(error) => error,
            };
            let give_up = |error: AttemptError| match error {
                AttemptError::Tool(e) => Ending::GaveUp(e),
                AttemptError::TimedOut(t) => Ending::TimedOut(t),
            };
            if n >= self.max_attempts {
                return (n, Err(give_up(error)));
            }
            let error = match error {
                AttemptError::Tool(error) => match error.retry_after() {
                    Some(asked) if asked > bounds.max_retry_after => {
                        let max = bounds.max_retry_after;
                        return (n, Err(Ending::RetryAfterTooLong { asked, max, error }));
                    }
                    _ => AttemptError::Tool(error),
                },
                timed_out @ AttemptError::TimedOut(_) => timed_out,
            };
            let asked = match &error {
                AttemptError::Tool(e) => e.retry_after(),
                AttemptError::TimedOut(_) => None,
            };
            let wait = asked.unwrap_or_else(|| full_jitter(backoff.next().unwrap_or_default()));
            let resumes_at = started.elapsed().saturating_add(wait);
            let in_time = self.max_elapsed.is_none_or(|max| resumes_at <= max)
                && resumes_at < bounds.deadline;
            if !in_time {
                return (n, Err(give_up(error)));
            }
            tracing::warn!(%error, ?wait, "transient failure; retrying");
            tokio::time::sleep(wait).await;
            n = n.saturating_add(1);
        }
    }
}

/// A uniformly random wait in `[0, bound]`: "full jitter" as in the AWS Architecture Blog's
/// "Exponential Backoff And Jitter".
pub(crate) fn full_jitter(bound: Duration) -> Duration {
    bound.mul_f64(fastrand::f64())
}

/// A GCRA rate limit: a sustained rate, plus a burst of calls that may go at once.
///
/// `RateLimit::per_second(10)` lets 10 calls through at once, then one every 100 ms as the
/// budget refills; `.burst(1)` spaces every call by 100 ms. Attempts over the limit wait (they
/// never fail); retries count like first attempts. Implemented with [`governor`], timed by
/// tokio's clock (so it follows `tokio::time::pause` in tests).
///
/// The limit is never exceeded, but it can be undershot: tokio's timers fire on 1 ms ticks,
/// and with a burst of 1 a caller that wakes late loses the rest of its slot. Measured with 8
/// callers (`benches/benches/tool_policy.rs`): 100/s burst 1 gave 88/s and 1 000/s burst 1
/// gave 462/s, while 1 000/s burst 10 and 10 000/s burst 100 gave the configured rate to
/// within 0.1 %. Allow a burst of a few milliseconds' worth of calls when the rate matters.
///
/// ```
/// use flow_runtime::tool::RateLimit;
/// use std::time::Duration;
///
/// let limit = RateLimit::per_second(10).burst(2);
/// assert_eq!(limit.period(), Duration::from_millis(100));
/// assert_eq!(limit.burst_size(), 2);
/// assert_eq!(RateLimit::every(Duration::from_secs(2)).burst_size(), 1);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub(crate) quota: Quota,
}

impl RateLimit {
    /// `n` calls per second, in bursts of up to `n` (0 is taken as 1).
    #[must_use]
    pub fn per_second(n: u32) -> Self {
        Self {
            quota: Quota::per_second(non_zero(n)),
        }
    }

    /// `n` calls per minute, in bursts of up to `n` (0 is taken as 1).
    #[must_use]
    pub fn per_minute(n: u32) -> Self {
        Self {
            quota: Quota::per_minute(non_zero(n)),
        }
    }

    /// One call per `period`, no burst (a zero period is taken as 1 ns, and one over 146
    /// years as that: see [`burst`](RateLimit::burst)).
    #[must_use]
    pub fn every(period: Duration) -> Self {
        let period = period.clamp(
            Duration::from_nanos(1),
            Duration::from_nanos(MAX_WINDOW_NANOS / 2),
        );
        Self {
            quota: Quota::with_period(period).unwrap_or(Quota::per_second(NonZeroU32::MAX)),
        }
    }

    /// Up to `n` calls at once when the budget is full (0 is taken as 1); the sustained rate
    /// stays the same.
    ///
    /// governor counts in `u64` nanoseconds without overflow checks: a burst whose budget, one
    /// period more than the burst, would span more than 292 years is reduced to one that does
    /// not (a stricter limit, never a looser one).
    #[must_use]
    pub fn burst(self, n: u32) -> Self {
        let period = u64::try_from(self.period().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let most = u32::try_from((MAX_WINDOW_NANOS / period).saturating_sub(1)).unwrap_or(u32::MAX);
        Self {
            quota: self.quota.allow_burst(non_zero(n.min(most))),
        }
    }

    /// The time one call's budget takes to refill: 1 / rate.
    #[must_use]
    pub fn period(&self) -> Duration {
        self.quota.replenish_interval()
    }

    /// How many calls may go at once.
    #[must_use]
    pub fn burst_size(&self) -> u32 {
        self.quota.burst_size().get()
    }
}

/// The longest span governor's arithmetic is kept to, in nanoseconds (292 years): a limit's
/// period times its burst plus one, to which the time since the limiter started is added.
const MAX_WINDOW_NANOS: u64 = u64::MAX / 2;

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(deadline: Duration, max_retry_after: Duration) -> Bounds {
        Bounds {
            deadline,
            max_retry_after,
        }
    }

    /// An attempt of 2 s that asks for `Retry-After: u64::MAX` seconds, under `max_elapsed`
    /// and with no other bound: `elapsed + wait` overflowed a `Duration` and panicked.
    #[tokio::test(start_paused = true)]
    async fn the_longest_retry_after_after_a_slow_attempt_gives_up_without_panicking() {
        let retry = Retry::exponential(Duration::from_millis(1))
            .max_attempts(5)
            .max_elapsed(Duration::from_secs(10));
        let (attempts, ended) = retry
            .drive(
                bounds(Duration::MAX, Duration::MAX),
                &tracing::Span::none(),
                |_| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Err::<(), _>(AttemptError::Tool(
                        ToolError::transient("busy").with_retry_after(Duration::MAX),
                    ))
                },
            )
            .await;
        assert_eq!(attempts, 1);
        assert!(matches!(ended, Err(Ending::GaveUp(_))));
    }

    /// The same wait with the default bounds: over the cap, so the call ends at once saying
    /// what was asked; and a backoff as long as a `Duration` goes is cut by the deadline.
    #[tokio::test(start_paused = true)]
    async fn huge_waits_end_the_call_under_the_default_bounds() {
        let defaults = bounds(DEFAULT_DEADLINE, DEFAULT_MAX_RETRY_AFTER);
        let retry = Retry::exponential(Duration::MAX).max_attempts(5);
        let (attempts, ended) = retry
            .drive(defaults, &tracing::Span::none(), |_| async {
                Err::<(), _>(AttemptError::Tool(
                    ToolError::transient("busy").with_retry_after(Duration::MAX),
                ))
            })
            .await;
        assert_eq!(attempts, 1);
        assert!(matches!(
            ended,
            Err(Ending::RetryAfterTooLong { asked: Duration::MAX, max, .. }) if max == DEFAULT_MAX_RETRY_AFTER
        ));

        let started = tokio::time::Instant::now();
        let (attempts, ended) = retry
            .drive(defaults, &tracing::Span::none(), |_| async {
                Err::<(), _>(AttemptError::Tool(ToolError::transient("busy")))
            })
            .await;
        // The first backoff (up to `Duration::MAX`) would end past the deadline, or, if
        // jitter drew it short, a later one does: never a sleep past the deadline.
        assert!(matches!(ended, Err(Ending::GaveUp(_))));
        assert!(attempts >= 1);
        assert!(started.elapsed() < DEFAULT_DEADLINE);
    }

    /// An attempt that never ends is cut at the deadline.
    #[tokio::test(start_paused = true)]
    async fn an_attempt_still_going_at_the_deadline_is_abandoned() {
        let (attempts, ended) = Retry::none()
            .drive(
                bounds(Duration::from_secs(5), DEFAULT_MAX_RETRY_AFTER),
                &tracing::Span::none(),
                |_| std::future::pending::<Result<(), AttemptError>>(),
            )
            .await;
        assert_eq!(attempts, 1);
        assert!(matches!(ended, Err(Ending::DeadlineExceeded(d)) if d == Duration::from_secs(5)));
    }
}
