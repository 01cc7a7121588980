//! A scripted model server on loopback, speaking OpenAI's Chat Completions and Anthropic's
//! Messages API, for tests and examples that need a model but no network.
//!
//! [`ScriptedModel`] answers each request from a [`Script`]: the reply for a request is chosen
//! by the request's own conversation — the number of assistant turns it already holds — so
//! the same conversation always gets the same reply, whichever process sends it and however
//! often (a resumed run, a retry). Transient faults (a 429 with `Retry-After`, a 500) are
//! played per idempotency key: the n-th request carrying one key gets the n-th fault, then
//! the scripted reply. The server counts requests per idempotency key, so a crash test can
//! assert that no journaled call was sent again.
//!
//! It lives in the runtime (feature `scripted`) rather than in the test crate so that the
//! examples, this crate's tests and users' own tests share one implementation of both wire
//! formats: the same one the clients are tested against.
//!
//! ```
//! use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
//! use flow_runtime::model::{ChatRequest, FinishReason, OpenAiChat};
//! use flow_runtime::tool::{IdempotencyKey, PolicyTool, Retry, ToolPolicy};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = ScriptedModel::start(
//!     Script::new([
//!         Reply::tool_call("weather", serde_json::json!({ "city": "Oslo" })),
//!         Reply::text("It is 21 °C in Oslo."),
//!     ])
//!     // The first request of every call is refused once, asking for a 0 s wait.
//!     .faults_per_key([Reply::status(429).retry_after(0)]),
//! )
//! .await?;
//!
//! let policy = ToolPolicy::builder()
//!     .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
//!     .build();
//! let model = PolicyTool::new(OpenAiChat::new(&server.openai_url(), "scripted")?, policy);
//!
//! let request = ChatRequest::new().user("Weather in Oslo?");
//! let answer = model.call(&IdempotencyKey::from("turn-0"), request).await?;
//! assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
//! assert_eq!(answer.tool_calls[0].name, "weather");
//! assert_eq!(server.requests_for("turn-0"), 2); // the 429, then the answer
//! # Ok(())
//! # }
//! ```

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// What the server answers to one request: a model's answer (text, tool calls, a structured
/// answer) or an HTTP failure.
///
/// ```
/// use flow_runtime::model::scripted::Reply;
/// use serde_json::json;
///
/// let parallel = Reply::tool_calls([
///     ("weather", json!({ "city": "Oslo" })),
///     ("weather", json!({ "city": "Bergen" })),
/// ]);
/// let busy = Reply::status(429).retry_after(2);
/// let broken = Reply::body(200, "{ not json");
/// let done = Reply::answer(json!({ "approve": true })).usage(120, 8);
/// # let _ = (parallel, busy, broken, done);
/// ```
#[derive(Clone, Debug)]
pub struct Reply(Kind);

#[derive(Clone, Debug)]
enum Kind {
    Answer {
        text: Option<String>,
        /// (name, arguments as JSON text: maybe not JSON at all).
        calls: Vec<(String, String)>,
        structured: Option<Value>,
        usage: Option<(u64, u64)>,
    },
    Http {
        status: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
}

impl Reply {
    fn answer_of(
        text: Option<String>,
        calls: Vec<(String, String)>,
        structured: Option<Value>,
    ) -> Self {
        Self(Kind::Answer {
            text,
            calls,
            structured,
            usage: None,
        })
    }

    /// A text answer: the model is done.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self::answer_of(Some(text.into()), Vec::new(), None)
    }

    /// One tool call of tool `name` (offered or not: calling an unknown tool is a scripted
    /// case too) with `arguments`.
    #[must_use]
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::tool_calls([(name, arguments)])
    }

    /// Parallel tool calls in one answer, in order.
    #[must_use]
    pub fn tool_calls<N: Into<String>>(calls: impl IntoIterator<Item = (N, Value)>) -> Self {
        let calls = calls
            .into_iter()
            .map(|(name, arguments)| (name.into(), arguments.to_string()))
            .collect();
        Self::answer_of(None, calls, None)
    }

    /// A call of tool `name` whose arguments are `raw`, as written: for arguments that are
    /// not JSON. (The Messages API carries arguments as a JSON value, so there `raw` that is
    /// not JSON arrives as a JSON string.)
    #[must_use]
    pub fn malformed_call(name: impl Into<String>, raw: impl Into<String>) -> Self {
        Self::answer_of(None, vec![(name.into(), raw.into())], None)
    }

    /// The final structured answer `answer`: the answer's text in Chat Completions; in the
    /// Messages API a call of the last tool the request offers, where
    /// [`AnthropicMessages`](crate::model::AnthropicMessages) puts its structured-answer
    /// tool (or text when no tool is offered).
    #[must_use]
    pub fn answer(answer: Value) -> Self {
        Self::answer_of(None, Vec::new(), Some(answer))
    }

    /// An HTTP error with status `status` (`{"error": …}` as its body), e.g. 429 or 500.
    ///
    /// A status that is not a valid HTTP status (below 100 or above 999) is answered as 500.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self(Kind::Http {
            status,
            retry_after: None,
            body: None,
        })
    }

    /// An answer with status `status` and `body` as it is: malformed JSON, say.
    #[must_use]
    pub fn body(status: u16, body: impl Into<String>) -> Self {
        Self(Kind::Http {
            status,
            retry_after: None,
            body: Some(body.into()),
        })
    }

    /// The same HTTP reply with `Retry-After: seconds`. No effect on a model's answer.
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        if let Kind::Http { retry_after, .. } = &mut self.0 {
            *retry_after = Some(seconds.to_string());
        }
        self
    }

    /// The same answer, reporting `input` and `output` tokens. Without it, an answer reports
    /// a quarter of the request body's bytes as input tokens and a quarter of its own text's
    /// as output tokens (at least one each). No effect on an HTTP failure.
    #[must_use]
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        if let Kind::Answer { usage, .. } = &mut self.0 {
            *usage = Some((input, output));
        }
        self
    }
}

/// The replies a [`ScriptedModel`] plays.
///
/// - `turns[n]` answers every request whose conversation already holds `n` assistant turns;
///   a request past the last turn is answered 400, saying so.
/// - [`faults_per_key`](Script::faults_per_key): the n-th request carrying one idempotency
///   key gets `faults[n]` instead, while there is one;
///   [`faults_on_turn`](Script::faults_on_turn) does so for one turn's requests only.
///
/// ```
/// use flow_runtime::model::scripted::{Reply, Script};
///
/// // Turn 1 is refused twice (a 429, then a 500) before its answer; turns 0 and 2 are not.
/// let script = Script::new([
///     Reply::tool_call("search", serde_json::json!({ "q": "flow" })),
///     Reply::tool_call("search", serde_json::json!({ "q": "flow runtime" })),
///     Reply::text("Found it."),
/// ])
/// .faults_on_turn(1, [Reply::status(429).retry_after(1), Reply::status(500)]);
/// # let _ = script;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Script {
    turns: Vec<Reply>,
    faults: Vec<Reply>,
    turn_faults: BTreeMap<usize, Vec<Reply>>,
}

impl Script {
    /// A script answering turn `n` with the `n`-th reply.
    pub fn new(turns: impl IntoIterator<Item = Reply>) -> Self {
        Self {
            turns: turns.into_iter().collect(),
            faults: Vec::new(),
            turn_faults: BTreeMap::new(),
        }
    }

    /// The same script, answering the first requests of every idempotency key with `faults`
    /// (the first request gets the first fault, …) before the scripted reply.
    #[must_use]
    pub fn faults_per_key(mut self, faults: impl IntoIterator<Item = Reply>) -> Self {
        self.faults = faults.into_iter().collect();
        self
    }

    /// The same script, answering the first requests of every idempotency key asking for
    /// turn `turn` with `faults` (instead of the [`faults_per_key`](Script::faults_per_key),
    /// for that turn).
    #[must_use]
    pub fn faults_on_turn(mut self, turn: usize, faults: impl IntoIterator<Item = Reply>) -> Self {
        self.turn_faults.insert(turn, faults.into_iter().collect());
        self
    }
}

/// Which API a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Api {
    /// `POST /openai/v1/chat/completions`.
    OpenAi,
    /// `POST /anthropic/v1/messages`.
    Anthropic,
}

/// One request, as the server saw it.
///
/// It holds the credential headers as received, so that a test can check them: it is a test
/// double, and `Debug` shows whether they were present, not their value.
#[derive(Clone)]
#[non_exhaustive]
pub struct SeenRequest {
    /// Which API.
    pub api: Api,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `x-api-key` header.
    pub api_key: Option<String>,
    /// The `anthropic-version` header.
    pub anthropic_version: Option<String>,
    /// The request body (`null` if it was not JSON).
    pub body: Value,
    /// The turn it asked for: how many assistant turns its conversation held.
    pub turn: usize,
    /// When it arrived, on tokio's clock.
    pub at: tokio::time::Instant,
}

impl fmt::Debug for SeenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeenRequest")
            .field("api", &self.api)
            .field("idempotency_key", &self.idempotency_key)
            .field("authorization", &self.authorization.as_ref().map(|_| "…"))
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

struct Shared {
    script: Script,
    seen: Mutex<Vec<SeenRequest>>,
    per_key: Mutex<BTreeMap<String, usize>>,
}

/// A model server on `127.0.0.1` playing a [`Script`], in both wire formats; stopped when
/// dropped. See the [module](self) documentation.
pub struct ScriptedModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedModel {
    /// Starts a server playing `script` on an ephemeral loopback port, on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// No loopback port could be bound.
    pub async fn start(script: Script) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script,
            seen: Mutex::new(Vec::new()),
            per_key: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new()
            .route(
                "/openai/v1/chat/completions",
                axum::routing::post(
                    |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| async move {
                        serve(Api::OpenAi, &shared, &headers, &body)
                    },
                ),
            )
            .route(
                "/anthropic/v1/messages",
                axum::routing::post(
                    |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| async move {
                        serve(Api::Anthropic, &shared, &headers, &body)
                    },
                ),
            )
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            // Ends only when the task is aborted (on drop) or the listener fails.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for [`OpenAiChat`](crate::model::OpenAiChat):
    /// `http://127.0.0.1:<port>/openai/v1`.
    #[must_use]
    pub fn openai_url(&self) -> String {
        format!("http://{}/openai/v1", self.addr)
    }

    /// The base URL for [`AnthropicMessages`](crate::model::AnthropicMessages):
    /// `http://127.0.0.1:<port>/anthropic/v1`.
    #[must_use]
    pub fn anthropic_url(&self) -> String {
        format!("http://{}/anthropic/v1", self.addr)
    }

    /// Every request so far, in order of arrival.
    #[must_use]
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Forgets the requests seen so far ([`requests`](ScriptedModel::requests) starts empty
    /// again), keeping the counts per idempotency key: for long runs (benchmarks, crash loops)
    /// that would otherwise keep every request body.
    pub fn forget_requests(&self) {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many requests carried idempotency key `key`.
    #[must_use]
    pub fn requests_for(&self, key: &str) -> usize {
        self.key_counts().get(key).copied().unwrap_or(0)
    }

    /// How many requests carried each idempotency key (requests without one are counted
    /// under `""`).
    #[must_use]
    pub fn key_counts(&self) -> BTreeMap<String, usize> {
        self.shared
            .per_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn serve(api: Api, shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let turn = request["messages"].as_array().map_or(0, |messages| {
        messages.iter().filter(|m| m["role"] == "assistant").count()
    });
    let key = text("idempotency-key");
    let seen_before = {
        let mut per_key = shared
            .per_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = per_key.entry(key.clone().unwrap_or_default()).or_insert(0);
        *count += 1;
        *count - 1
    };
    shared
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(SeenRequest {
            api,
            idempotency_key: key,
            authorization: text("authorization"),
            api_key: text("x-api-key"),
            anthropic_version: text("anthropic-version"),
            body: request.clone(),
            turn,
            at: tokio::time::Instant::now(),
        });

    if request.is_null() {
        return error(400, "the request body is not JSON", None);
    }
    let script = &shared.script;
    let faults = script.turn_faults.get(&turn).unwrap_or(&script.faults);
    let reply = match faults.get(seen_before) {
        Some(fault) => fault,
        None => match script.turns.get(turn) {
            Some(reply) => reply,
            None => {
                return error(
                    400,
                    &format!(
                        "the scripted model has no reply for turn {turn} (its script has {} \
                         turns)",
                        script.turns.len()
                    ),
                    None,
                );
            }
        },
    };
    match &reply.0 {
        Kind::Http {
            status,
            retry_after,
            body: None,
        } => error(*status, "scripted failure", retry_after.as_deref()),
        Kind::Http {
            status,
            retry_after,
            body: Some(body),
        } => raw(*status, body.clone(), retry_after.as_deref()),
        Kind::Answer {
            text,
            calls,
            structured,
            usage,
        } => {
            let input = usage.map_or(body.len() as u64 / 4 + 1, |u| u.0);
            let answer = match api {
                Api::OpenAi => {
                    openai_answer(&request, turn, text.as_ref(), calls, structured.as_ref())
                }
                Api::Anthropic => {
                    anthropic_answer(&request, turn, text.as_ref(), calls, structured.as_ref())
                }
            };
            let output = usage.map_or(answer.1 / 4 + 1, |u| u.1);
            let mut answer = answer.0;
            answer["usage"] = match api {
                Api::OpenAi => json!({
                    "prompt_tokens": input,
                    "completion_tokens": output,
                    "total_tokens": input.saturating_add(output),
                }),
                Api::Anthropic => json!({ "input_tokens": input, "output_tokens": output }),
            };
            axum::Json(answer).into_response()
        }
    }
}

/// A Chat Completions answer, and the length of its text (for the default usage).
fn openai_answer(
    request: &Value,
    turn: usize,
    text: Option<&String>,
    calls: &[(String, String)],
    structured: Option<&Value>,
) -> (Value, u64) {
    let content = structured.map(Value::to_string).or_else(|| text.cloned());
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({
                "id": format!("call_{turn}_{i}"),
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            })
        })
        .collect();
    let length =
        content.as_ref().map_or(0, String::len) + calls.iter().map(|(_, a)| a.len()).sum::<usize>();
    let mut message = json!({ "role": "assistant", "content": content });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let finish_reason = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let answer = json!({
        "id": format!("chatcmpl-scripted-{turn}"),
        "object": "chat.completion",
        "model": request["model"],
        "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
    });
    (answer, length as u64)
}

/// A Messages answer, and the length of its text (for the default usage).
fn anthropic_answer(
    request: &Value,
    turn: usize,
    text: Option<&String>,
    calls: &[(String, String)],
    structured: Option<&Value>,
) -> (Value, u64) {
    let mut content = Vec::new();
    let mut length = 0;
    if let Some(text) = text {
        length += text.len();
        content.push(json!({ "type": "text", "text": text }));
    }
    let mut uses_tool = false;
    if let Some(answer) = structured {
        length += answer.to_string().len();
        let answer_tool = request["tools"]
            .as_array()
            .and_then(|tools| tools.last())
            .and_then(|tool| tool["name"].as_str());
        match answer_tool {
            Some(name) => {
                uses_tool = true;
                content.push(json!({
                    "type": "tool_use",
                    "id": format!("toolu_{turn}_answer"),
                    "name": name,
                    "input": answer,
                }));
            }
            None => content.push(json!({ "type": "text", "text": answer.to_string() })),
        }
    }
    for (i, (name, arguments)) in calls.iter().enumerate() {
        uses_tool = true;
        length += arguments.len();
        let input =
            serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.clone()));
        content.push(json!({
            "type": "tool_use",
            "id": format!("toolu_{turn}_{i}"),
            "name": name,
            "input": input,
        }));
    }
    let answer = json!({
        "id": format!("msg_scripted_{turn}"),
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": content,
        "stop_reason": if uses_tool { "tool_use" } else { "end_turn" },
    });
    (answer, length as u64)
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn error(status: u16, message: &str, retry_after: Option<&str>) -> Response {
    raw(
        status,
        json!({ "error": { "message": message } }).to_string(),
        retry_after,
    )
}

fn raw(status: u16, body: String, retry_after: Option<&str>) -> Response {
    let mut response = (
        status_code(status),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if let Some(wait) = retry_after.and_then(|w| w.parse().ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, wait);
    }
    response
}
