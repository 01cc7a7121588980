use crate::state::RunId;
use crate::tool::{AuthHeader, SecretString};
use std::fmt;
use std::sync::Arc;

/// The namespace of [`IdempotencyKey::new`]'s name-based UUIDs; any fixed value would do, but
/// changing it changes every key.
const KEY_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3c1f_8a5e_0b7d_4e42_9d61_c2a4_f05b_7e19);

/// Which visit of a step a call belongs to.
///
/// A step inside a loop runs once per turn of the loop, and a `workers` step runs its function
/// once per item: each of these is a visit, and the calls of one visit are numbered from 0.
/// A visit is told apart by the number of loop back-edges the run had taken when the step
/// began (the sum of its `Loops` counters, which never go down and are stored with every
/// checkpoint) and, in a `workers` step, the item's index. Both are the same when the visit
/// runs again (a retry, a resumed run), and two visits of one step never share both. A
/// [`CallRecord`](crate::state::CallRecord) keeps the visit of its call; as JSON it is
/// `{"back_edges": 1, "item": 2}` (`item` left out when there is none); a record stored
/// without one reads as [`Visit::FIRST`].
///
/// ```
/// use flow_runtime::tool::Visit;
///
/// // The third item of a `workers` step, on the loop's second turn.
/// let visit = Visit::after(1).item(2);
/// assert_eq!(visit.back_edges(), 1);
/// assert_eq!(visit.item_index(), Some(2));
/// assert_ne!(visit, Visit::FIRST);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(default)]
pub struct Visit {
    back_edges: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<u32>,
}

impl Visit {
    /// A step's visit before the run took any loop back-edge, not an item of a `workers`
    /// step: the only visit of every step of a workflow without loops.
    pub const FIRST: Self = Self {
        back_edges: 0,
        item: None,
    };

    /// The visit of a step that began after the run had taken `back_edges` loop back-edges
    /// in all.
    #[must_use]
    pub const fn after(back_edges: u64) -> Self {
        Self {
            back_edges,
            item: None,
        }
    }

    /// Item `index` (from 0) of a `workers` step, within this visit.
    #[must_use]
    pub const fn item(self, index: u32) -> Self {
        Self {
            back_edges: self.back_edges,
            item: Some(index),
        }
    }

    /// How many loop back-edges the run had taken when the step began.
    #[must_use]
    pub const fn back_edges(self) -> u64 {
        self.back_edges
    }

    /// The item's index, for a visit of one item of a `workers` step.
    #[must_use]
    pub const fn item_index(self) -> Option<u32> {
        self.item
    }
}

/// The key a service uses to recognise a repeated call: the same for every attempt of one
/// call, different for every other call.
///
/// [`IdempotencyKey::new`] derives it from the run, the step, the step's [`Visit`] (the turn
/// of a loop, the item of a `workers` step) and the position of the call within that visit,
/// so it is also the same when a step is run again after a crash and makes the same calls in
/// the same order. Send it with every attempt (as an `Idempotency-Key` header, say) and a
/// service that honours it performs the call once however often it is retried.
///
/// ```
/// use flow_runtime::state::RunId;
/// use flow_runtime::tool::{IdempotencyKey, Visit};
///
/// let run = RunId::from("run-42");
/// let key = IdempotencyKey::new(&run, "charge", Visit::FIRST, 0);
///
/// // Stable: the same inputs give the same key, in this process and any other.
/// assert_eq!(key, IdempotencyKey::new(&run, "charge", Visit::FIRST, 0));
/// assert_eq!(key.as_str(), "d5ddcd8c-3eec-5ca0-a8f5-55cb10d3adcd");
/// // Every call has its own: the next call of the visit, another step, the step's next
/// // turn in a loop, another item of a `workers` step.
/// assert_ne!(key, IdempotencyKey::new(&run, "charge", Visit::FIRST, 1));
/// assert_ne!(key, IdempotencyKey::new(&run, "refund", Visit::FIRST, 0));
/// assert_ne!(key, IdempotencyKey::new(&run, "charge", Visit::after(1), 0));
/// assert_ne!(key, IdempotencyKey::new(&run, "charge", Visit::FIRST.item(0), 0));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// The key of call number `call_index` (from 0) of visit `visit` of step `step` in run
    /// `run_id`.
    ///
    /// A name-based (v5) UUID of the four, so it is 36 characters of `[0-9a-f-]` whatever the
    /// run id holds (safe in any header, within any service's length limit) and does not
    /// disclose the run id to the service.
    #[must_use]
    pub fn new(run_id: &RunId, step: &str, visit: Visit, call_index: u32) -> Self {
        // Length prefixes keep the name unambiguous: ("a:b", "c") and ("a", "b:c") differ;
        // the numbers after the step are separated, and `-` stands for "not an item".
        let run = run_id.as_str();
        let item = visit
            .item
            .map_or_else(|| "-".to_owned(), |item| item.to_string());
        let name = format!(
            "{}:{run}{}:{step}/{}/{item}/{call_index}",
            run.len(),
            step.len(),
            visit.back_edges,
        );
        let uuid = uuid::Uuid::new_v5(&KEY_NAMESPACE, name.as_bytes());
        Self(uuid.hyphenated().to_string().into())
    }

    /// The key of the delivery of the output of visit `visit` of step `step` to the sink
    /// attached at `index`. The step is prefixed so that it never equals the key of the step's
    /// tool call number `index` (step names are identifiers: none contains `:`).
    pub(crate) fn for_output(run_id: &RunId, step: &str, visit: Visit, index: u32) -> Self {
        Self::new(run_id, &format!("output:{step}"), visit, index)
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
