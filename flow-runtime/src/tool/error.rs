use crate::tool::redact::Redactor;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How a tool failed, as the tool itself judges it: worth retrying or not.
///
/// A [`Tool`](crate::tool::Tool) returns [`ToolError::transient`] for failures that may go away
/// on their own (a 503, a dropped connection, a rate limit on the other side), optionally with
/// the wait the service asked for ([`with_retry_after`](ToolError::with_retry_after)), and
/// [`ToolError::permanent`] for failures that the same request will hit again (a 400, a 404,
/// an input the service rejects). A [`PolicyTool`](crate::tool::PolicyTool) retries only the
/// transient ones.
///
/// ```
/// use flow_runtime::tool::ToolError;
/// use std::time::Duration;
///
/// fn classify(status: u16, retry_after_secs: Option<u64>) -> ToolError {
///     match status {
///         429 | 500..=599 => {
///             let error = ToolError::transient(format!("service answered {status}"));
///             match retry_after_secs {
///                 Some(secs) => error.with_retry_after(Duration::from_secs(secs)),
///                 None => error,
///             }
///         }
///         _ => ToolError::permanent(format!("service answered {status}")),
///     }
/// }
///
/// let busy = classify(503, Some(2));
/// assert!(busy.is_transient());
/// assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(busy.to_string(), "service answered 503");
///
/// let bad = classify(400, None);
/// assert!(!bad.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    message: String,
    transient: bool,
    retry_after: Option<Duration>,
    #[source]
    source: Option<BoxError>,
}

impl ToolError {
    /// A failure that may succeed if the same call is made again later.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
            retry_after: None,
            source: None,
        }
    }

    /// A failure that the same call will hit again: never retried.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
            retry_after: None,
            source: None,
        }
    }

    /// How long the service asked to wait before the next attempt (an HTTP `Retry-After`).
    /// A retry waits this long instead of its own backoff. Ignored on a permanent error.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The error underneath, kept as this error's [`source`](std::error::Error::source).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Whether the failure may go away on its own, so that a retry is worth making.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The wait the service asked for, on a transient error that has one.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after.filter(|_| self.transient)
    }
}

/// A credential could not be loaded from where it was declared to be.
///
/// Every message names the credential's source (the environment variable or the file) and
/// never holds the secret.
///
/// ```
/// use flow_runtime::tool::Credential;
///
/// let err = Credential::from_env("FLOW_DOC_SURELY_UNSET").resolve().unwrap_err();
/// assert_eq!(err.to_string(), "environment variable `FLOW_DOC_SURELY_UNSET` is not set");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The environment variable is not set.
    #[error("environment variable `{var}` is not set")]
    NotSet {
        /// The variable's name.
        var: String,
    },
    /// The environment variable is set but is not valid Unicode.
    #[error("environment variable `{var}` is not valid unicode")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The file could not be read (missing, no permission, not UTF-8).
    #[error("cannot read credential file `{}`", path.display())]
    Unreadable {
        /// The file's path.
        path: PathBuf,
        /// What reading it said.
        #[source]
        source: std::io::Error,
    },
    /// The source holds only whitespace.
    #[error("the credential from {from} is empty")]
    Empty {
        /// Where it came from: ``environment variable `X` `` or ``file `p` ``.
        from: String,
    },
}

/// A call through a [`PolicyTool`](crate::tool::PolicyTool) failed: the tool's own error, once
/// the policy has given up on it, or the policy's.
///
/// ```
/// use flow_runtime::tool::{CallError, Credential, Auth, IdempotencyKey, PolicyTool, Tool, ToolCtx, ToolError, ToolPolicy};
///
/// struct Ping;
///
/// impl Tool for Ping {
///     type Input = ();
///     type Output = ();
///     const NAME: &'static str = "ping";
///     const DESCRIPTION: &'static str = "Does nothing.";
///     async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<(), ToolError> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let policy = ToolPolicy::builder()
///     .auth(Auth::bearer(Credential::from_env("FLOW_DOC_SURELY_UNSET")))
///     .build();
/// let ping = PolicyTool::new(Ping, policy);
/// let key = IdempotencyKey::from("doc");
///
/// let err = ping.call(&key, ()).await.unwrap_err();
/// assert!(matches!(err, CallError::Credential { tool: "ping", .. }));
/// assert_eq!(
///     err.to_string(),
///     "tool `ping` was not called: its credential (environment variable \
///      `FLOW_DOC_SURELY_UNSET`) could not be loaded"
/// );
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The tool failed with a [permanent](ToolError::permanent) error: not retried.
    #[error("tool `{tool}` failed with a permanent error on attempt {attempt}; not retried")]
    Rejected {
        /// The tool's name.
        tool: &'static str,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The tool's error.
        #[source]
        source: ToolError,
    },
    /// The tool kept failing with [transient](ToolError::transient) errors until the retry
    /// policy ran out: of attempts, of elapsed time, or the service asked for a wait that would
    /// end past the time allowed.
    #[error("tool `{tool}` still failed after {attempts} attempt(s); giving up")]
    GaveUp {
        /// The tool's name.
        tool: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: ToolError,
    },
    /// The last attempt took longer than the policy's per-attempt timeout, and no retry was
    /// left.
    #[error("tool `{tool}` timed out after {timeout:?} on attempt {attempts}; giving up")]
    TimedOut {
        /// The tool's name.
        tool: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The per-attempt timeout.
        timeout: Duration,
    },
    /// The call's [deadline](crate::tool::ToolPolicyBuilder::deadline) passed while an
    /// attempt was still going (or waiting for a slot or the rate limit): the attempt was
    /// abandoned.
    #[error(
        "tool `{tool}` did not finish within its deadline of {deadline:?} (attempt {attempts} \
         was abandoned); raise it with `ToolPolicyBuilder::deadline` if the service is slow"
    )]
    DeadlineExceeded {
        /// The tool's name.
        tool: &'static str,
        /// How many attempts were made, the abandoned one included.
        attempts: u32,
        /// The policy's deadline.
        deadline: Duration,
    },
    /// The tool failed with a transient error whose service asked to wait (`Retry-After`)
    /// longer than the policy honours: the call gives up at once instead of sleeping that
    /// long or retrying early.
    #[error(
        "tool `{tool}` failed on attempt {attempts} and the service asked to wait {asked:?} \
         before retrying, longer than the {max:?} this tool's policy honours; giving up \
         (raise the limit with `ToolPolicyBuilder::max_retry_after`, or try again later)"
    )]
    RetryAfterTooLong {
        /// The tool's name.
        tool: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// The wait the service asked for.
        asked: Duration,
        /// The longest wait the policy honours.
        max: Duration,
        /// The last attempt's error.
        #[source]
        source: ToolError,
    },
    /// The policy's credential could not be loaded, so the tool was never called.
    #[error("tool `{tool}` was not called: its credential ({credential}) could not be loaded")]
    Credential {
        /// The tool's name.
        tool: &'static str,
        /// Where the credential was to come from, e.g. ``environment variable `TOKEN` ``.
        credential: String,
        /// Why it could not be loaded.
        #[source]
        source: CredentialError,
    },
    /// The step declares the tool, but the run's context was built without it: add it to the
    /// [`Toolbox`](crate::tool::Toolbox) given to
    /// [`CtxBuilder::tools`](crate::state::CtxBuilder::tools). A workflow's `run` checks this
    /// before its first step, so this comes only from the typestate API.
    #[error(
        "tool `{tool}` is not in the run's toolbox: add it with `Toolbox::new().with(PolicyTool::new(…))` and `Ctx::builder(…).tools(toolbox)`"
    )]
    NotRegistered {
        /// The tool's name.
        tool: &'static str,
    },
    /// The run's call journal could not be read or written (see
    /// [`Store::record_call`](crate::store::Store::record_call)). A call whose result could
    /// not be recorded is made again, with the same idempotency key, when the step runs again.
    #[error(
        "tool `{tool}`: the run's call journal failed ({source}); when the step runs again, a \
         call whose result is not recorded is made again with the same idempotency key"
    )]
    Journal {
        /// The tool's name.
        tool: &'static str,
        /// The store's error.
        #[source]
        source: crate::error::StoreError,
    },
    /// The journal holds this call's output, but it no longer decodes as the tool's output
    /// type: the type changed since the call was made.
    #[error(
        "tool `{tool}`: the journaled output of call {position} of this step no longer decodes \
         as the tool's output type ({source}); finish the run with the code that started it, or \
         keep the output type compatible"
    )]
    Replay {
        /// The tool's name.
        tool: &'static str,
        /// The call's position among the visit's calls.
        position: u32,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The journal recorded a call of another tool at this call's position: the step, run
    /// again, makes its calls in another order than the first time.
    #[error(
        "call {position} of this step was journaled as a call of tool `{recorded}`, but the step \
         now calls `{tool}` there: a step must make the same calls in the same order when it runs \
         again (decide what to call from the step's input and earlier calls' results only)"
    )]
    Diverged {
        /// The tool the step calls now.
        tool: &'static str,
        /// The call's position among the visit's calls.
        position: u32,
        /// The tool the journal recorded at that position.
        recorded: String,
    },
    /// The call needs a person's approval (the step lists its tool in `approve = [...]`),
    /// and did not get it: rejected, timed out, or approved for other arguments. Nothing was
    /// sent. Route on [`Denied`] (a timeout is routed like an event's).
    #[error("tool `{tool}` was not called: call `{call_id}` {denied}")]
    NotApproved {
        /// The tool's name.
        tool: &'static str,
        /// The call's id (see [`Approval::call_id`](crate::store::Approval::call_id)).
        call_id: String,
        /// Why.
        denied: Denied,
    },
    /// The call needs a person's approval, and the run's store could not ask for it (or
    /// has no approvals, or the run is not stored: start it with `Engine::start`).
    #[error(
        "tool `{tool}` needs a person's approval, and the run's store could not ask for it ({source}); approvals need a `MemoryStore` or `SqliteStore` holding the run"
    )]
    Approval {
        /// The tool's name.
        tool: &'static str,
        /// The store's error.
        #[source]
        source: crate::error::StoreError,
    },
}

/// Why an approval-gated call was not made: [`CallError::NotApproved`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// A person rejected it ([`Engine::reject`](crate::state::Engine::reject)), for `reason`.
    Rejected {
        /// Their reason.
        reason: String,
    },
    /// Nobody decided before the step's `timeout`.
    TimedOut,
    /// The step asked for this call with other arguments than the approval was given for
    /// (the step, run again, does not ask for the same call): an approval applies only to the
    /// arguments it was asked with.
    Changed {
        /// The arguments approved.
        approved: serde_json::Value,
        /// The arguments asked for now.
        asked: serde_json::Value,
    },
    /// A person approved it with edited arguments that do not decode as the tool's input.
    Unusable {
        /// Why they do not decode.
        reason: String,
    },
    /// The [`Approved`](crate::state::Approved) value belongs to another run, step or visit.
    Elsewhere,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { reason } => write!(f, "was rejected: {reason}"),
            Self::TimedOut => f.write_str("was not decided before its timeout"),
            Self::Changed { approved, asked } => write!(
                f,
                "was approved with arguments {approved}, but is asked with {asked}: an approval applies to exactly the arguments it was given for"
            ),
            Self::Unusable { reason } => write!(
                f,
                "was approved with edited arguments that do not fit the tool's input: {reason}"
            ),
            Self::Elsewhere => f.write_str(
                "was approved in another run, step or visit: an `Approved` value applies only to the call it was given for",
            ),
        }
    }
}

impl CallError {
    /// The name of the tool that failed.
    #[must_use]
    pub fn tool(&self) -> &'static str {
        match self {
            Self::Rejected { tool, .. }
            | Self::GaveUp { tool, .. }
            | Self::TimedOut { tool, .. }
            | Self::DeadlineExceeded { tool, .. }
            | Self::RetryAfterTooLong { tool, .. }
            | Self::Credential { tool, .. }
            | Self::Journal { tool, .. }
            | Self::Replay { tool, .. }
            | Self::Diverged { tool, .. }
            | Self::NotApproved { tool, .. }
            | Self::Approval { tool, .. }
            | Self::NotRegistered { tool } => tool,
        }
    }
}

/// What an attempt that did not succeed left behind: the tool's error or a timeout.
pub(crate) enum AttemptError {
    Tool(ToolError),
    TimedOut(Duration),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tool(e) => fmt::Display::fmt(e, f),
            Self::TimedOut(t) => write!(f, "attempt timed out after {t:?}"),
        }
    }
}

impl ToolError {
    /// The same error with `redact` applied to its message and, when some link of its source
    /// chain shows a secret (in `Display` or `Debug`), with that chain replaced by its
    /// redacted text. A chain that shows none is kept as it is, so that callers can still
    /// downcast it.
    pub(crate) fn redacted(self, redact: &Redactor) -> Self {
        if redact.is_empty() {
            return self;
        }
        let source = self.source.map(|source| {
            if chain_shows(&*source, redact) {
                Box::new(RedactedError::of(&*source, redact)) as BoxError
            } else {
                source
            }
        });
        Self {
            message: redact.text(&self.message),
            source,
            ..self
        }
    }
}

/// Whether `error` or any of its sources shows a secret `redact` knows.
fn chain_shows(error: &(dyn StdError + 'static), redact: &Redactor) -> bool {
    let mut link = Some(error);
    while let Some(error) = link {
        if redact.finds(&error.to_string()) || redact.finds(&format!("{error:?}")) {
            return true;
        }
        link = error.source();
    }
    false
}

/// An error's text, and its sources', with the secrets taken out: what stands in for a source
/// chain that showed one.
#[derive(Debug)]
struct RedactedError {
    message: String,
    source: Option<Box<RedactedError>>,
}

impl RedactedError {
    fn of(error: &(dyn StdError + 'static), redact: &Redactor) -> Self {
        Self {
            message: redact.text(&error.to_string()),
            source: error.source().map(|s| Box::new(Self::of(s, redact))),
        }
    }
}

impl fmt::Display for RedactedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for RedactedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}
