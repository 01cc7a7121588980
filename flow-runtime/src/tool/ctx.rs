use crate::state::RunId;
use crate::tool::{AuthHeader, SecretString};
use std::fmt;
use std::sync::Arc;

/// The namespace of [`IdempotencyKey::new`]'s name-based UUIDs; any fixed value would do, but
/// changing it changes every key.
const KEY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3c1f_8a5e_0b7d_4e42_9d61_c2a4_f05b_7e19);

/// The key a service uses to recognise a repeated call: the same for every attempt of one
/// call, different for every other call.
///
/// [`IdempotencyKey::new`] derives it from the run, the step and the position of the call
/// within the step, so it is also the same when a step is run again after a crash and makes
/// the same calls in the same order. Send it with every attempt (as an `Idempotency-Key`
/// header, say) and a service that honours it performs the call once however often it is
/// retried.
///
/// ```
/// use flow_runtime::state::RunId;
/// use flow_runtime::tool::IdempotencyKey;
///
/// let run = RunId::from("run-42");
/// let key = IdempotencyKey::new(&run, "charge", 0);
///
/// // Stable: the same inputs give the same key, in this process and any other.
/// assert_eq!(key, IdempotencyKey::new(&run, "charge", 0));
/// assert_eq!(key.as_str(), "62af8c50-e6d9-5d1f-a412-87f20b483e92");
/// // Every call has its own.
/// assert_ne!(key, IdempotencyKey::new(&run, "charge", 1));
/// assert_ne!(key, IdempotencyKey::new(&run, "refund", 0));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// The key of call number `call_index` (from 0) of step `step` in run `run_id`.
    ///
    /// A name-based (v5) UUID of the three, so it is 36 characters of `[0-9a-f-]` whatever the
    /// run id holds (safe in any header, within any service's length limit) and does not
    /// disclose the run id to the service.
    #[must_use]
    pub fn new(run_id: &RunId, step: &str, call_index: u32) -> Self {
        // Length prefixes keep the name unambiguous: ("a:b", "c") and ("a", "b:c") differ.
        let run = run_id.as_str();
        let name = format!("{}:{run}{}:{step}{call_index}", run.len(), step.len());
        let uuid = uuid::Uuid::new_v5(&KEY_NAMESPACE, name.as_bytes());
        Self(uuid.hyphenated().to_string().into())
    }

    /// The key as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", &*self.0)
    }
}

/// A key of your own, used as it is (e.g. one your caller sent you).
impl From<&str> for IdempotencyKey {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

/// A key of your own, used as it is (e.g. one your caller sent you).
impl From<String> for IdempotencyKey {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

/// What a [`Tool`](crate::tool::Tool) receives with each attempt: the call's idempotency key,
/// which attempt this is, and the credential, already loaded.
///
/// A [`PolicyTool`](crate::tool::PolicyTool) makes one per attempt. To call a tool directly
/// (in its own tests, say), make one with [`ToolCtx::new`].
///
/// ```
/// use flow_runtime::tool::{Auth, Credential, ExposeSecret, IdempotencyKey, ToolCtx};
///
/// let auth = Auth::bearer(Credential::new("t0ken")).header().unwrap();
/// let ctx = ToolCtx::new("search", IdempotencyKey::from("k-1")).with_auth(auth);
///
/// assert_eq!(ctx.attempt(), 1);
/// let header = ctx.auth_header().unwrap();
/// assert_eq!(header.name(), "authorization");
/// assert_eq!(header.value().expose_secret(), "Bearer t0ken");
/// assert_eq!(ctx.secret().unwrap().expose_secret(), "t0ken");
/// // The secret never prints.
/// assert!(!format!("{ctx:?}").contains("t0ken"));
/// ```
#[derive(Clone)]
pub struct ToolCtx {
    tool: &'static str,
    key: IdempotencyKey,
    attempt: u32,
    auth: Option<Arc<AuthHeader>>,
}

impl fmt::Debug for ToolCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolCtx")
            .field("tool", &self.tool)
            .field("key", &self.key)
            .field("attempt", &self.attempt)
            .field("auth", &self.auth.as_ref().map(|a| a.name()))
            .finish()
    }
}

impl ToolCtx {
    /// The context of attempt 1 of a call to tool `tool`, with no credential.
    #[must_use]
    pub fn new(tool: &'static str, key: IdempotencyKey) -> Self {
        Self {
            tool,
            key,
            attempt: 1,
            auth: None,
        }
    }

    /// The same context for attempt `attempt` (from 1; 0 is taken as 1).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// The same context with a credential, as [`Auth::header`](crate::tool::Auth::header)
    /// loads it.
    #[must_use]
    pub fn with_auth(mut self, header: AuthHeader) -> Self {
        self.auth = Some(Arc::new(header));
        self
    }

    pub(crate) fn for_attempt(
        tool: &'static str,
        key: IdempotencyKey,
        attempt: u32,
        auth: Option<Arc<AuthHeader>>,
    ) -> Self {
        Self {
            tool,
            key,
            attempt,
            auth,
        }
    }

    /// The tool's [`NAME`](crate::tool::Tool::NAME).
    #[must_use]
    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// The call's idempotency key: the same for every attempt of this call.
    #[must_use]
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// Which attempt of the call this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The header that carries the credential, for a tool that makes HTTP requests: add it to
    /// every request. `None` when the policy declares no [`Auth`](crate::tool::Auth).
    #[must_use]
    pub fn auth_header(&self) -> Option<&AuthHeader> {
        self.auth.as_deref()
    }

    /// The bare secret (the token, the API key, the password), for a tool that does not speak
    /// HTTP. `None` when the policy declares no [`Auth`](crate::tool::Auth).
    #[must_use]
    pub fn secret(&self) -> Option<&SecretString> {
        self.auth.as_ref().map(|a| a.secret())
    }
}
