//! The provider-neutral chat types: what a [`Model`](crate::model::Model) takes and returns.
//!
//! Every type here is `Serialize + Deserialize` with a stable, documented shape, so that a
//! model call can be journaled and replayed: field names are `snake_case`, enums are tagged
//! by a `role` or written in `snake_case`, and optional fields are left out when empty.

use crate::tool::{Catalogue, Tool, ToolSpec};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// One message of a conversation.
///
/// Serialised with a `role` tag: `{"role": "user", "content": "…"}`,
/// `{"role": "assistant", "content": null, "tool_calls": [...]}`,
/// `{"role": "tool", "call_id": "…", "name": "…", "content": "…", "is_error": false}`.
///
/// ```
/// use flow_runtime::model::Message;
///
/// let json = serde_json::to_value(Message::user("Where is my parcel?")).unwrap();
/// assert_eq!(json, serde_json::json!({ "role": "user", "content": "Where is my parcel?" }));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Message {
    /// Instructions for the model. Anthropic's API takes them apart from the conversation:
    /// its client joins every system message, in order, into the request's `system` field.
    System {
        /// The instructions.
        content: String,
    },
    /// What the user says.
    User {
        /// The text.
        content: String,
    },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        /// The text, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// The tools the model asked to call, in its order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering the [`ToolCall`] with id `call_id`.
    Tool {
        /// The [`ToolCall::id`] this answers.
        call_id: String,
        /// The tool's name, as called.
        name: String,
        /// The result (usually JSON), or what went wrong.
        content: String,
        /// Whether `content` describes a failure the model may correct (an unknown tool,
        /// arguments that do not decode, a tool's permanent error).
        #[serde(default)]
        is_error: bool,
    },
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::System {
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: Some(content.into()),
            tool_calls: Vec::new(),
        }
    }

    /// A successful tool result for `call`.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self::Tool {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: content.into(),
            is_error: false,
        }
    }

    /// A failed tool result for `call`: what went wrong, for the model to correct.
    pub fn tool_error(call: &ToolCall, content: impl Into<String>) -> Self {
        Self::Tool {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: content.into(),
            is_error: true,
        }
    }
}

/// A tool call the model asked for: an id (to answer it with [`Message::Tool`]), the tool's
/// name and its arguments.
///
/// The arguments are kept as the JSON text the model wrote, because a model may write text
/// that is not JSON, or JSON that does not fit the tool's input: both are for the caller to
/// report back to the model, not a failure of the call. [`decode`](ToolCall::decode) reads
/// them as a tool's input.
///
/// ```
/// use flow_runtime::model::ToolCall;
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Query { city: String }
///
/// let call = ToolCall::new("call_1", "weather", r#"{"city": "Oslo"}"#);
/// assert_eq!(call.decode::<Query>().unwrap(), Query { city: "Oslo".into() });
///
/// let broken = ToolCall::new("call_2", "weather", r#"{"city": "Os"#);
/// assert_eq!(
///     broken.decode::<Query>().unwrap_err().to_string(),
///     "the arguments of tool call `call_2` (`weather`) do not decode: \
///      EOF while parsing a string at line 1 column 12"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (`call_…`, `toolu_…`).
    pub id: String,
    /// The name of the tool to call.
    pub name: String,
    /// The arguments, as the JSON text the model wrote.
    pub arguments: String,
}

impl ToolCall {
    /// A tool call.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    /// The arguments decoded as `T` (a tool's input).
    ///
    /// # Errors
    ///
    /// The arguments are not JSON, or do not fit `T`. The message is meant for the model: it
    /// names the call and says what does not fit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ArgumentsError> {
        serde_json::from_str(&self.arguments).map_err(|source| ArgumentsError {
            call_id: self.id.clone(),
            tool: self.name.clone(),
            source,
        })
    }
}

/// A tool call's arguments do not decode as the tool's input: see [`ToolCall::decode`].
#[derive(Debug, thiserror::Error)]
#[error("the arguments of tool call `{call_id}` (`{tool}`) do not decode: {source}")]
pub struct ArgumentsError {
    call_id: String,
    tool: String,
    #[source]
    source: serde_json::Error,
}

impl ArgumentsError {
    /// The id of the call.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The tool's name, as called.
    #[must_use]
    pub fn tool(&self) -> &str {
        &self.tool
    }
}

/// A tool as offered to a model: name, description and the JSON Schema of its input.
///
/// Made from a [`ToolSpec`] (so from a [`Tool`]'s own types: one source of truth), and the
/// one place that knows how a tool looks in each provider's `tools` list
/// ([`ToolSpec::to_openai`] and [`ToolSpec::to_anthropic`] go through it).
///
/// ```
/// use flow_runtime::model::ToolDef;
/// use flow_runtime::tool::{Tool, ToolCtx, ToolError};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
/// struct Query { city: String }
///
/// struct Weather;
/// impl Tool for Weather {
///     type Input = Query;
///     type Output = f32;
///     const NAME: &'static str = "weather";
///     const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";
///     async fn call(&self, _: &ToolCtx, _: Query) -> Result<f32, ToolError> { Ok(21.5) }
/// }
///
/// let def = ToolDef::of::<Weather>();
/// assert_eq!(def.name, "weather");
/// assert_eq!(def.parameters["required"], serde_json::json!(["city"]));
/// assert!(def.parameters.get("$schema").is_none());
/// assert_eq!(def.to_openai()["function"]["name"], "weather");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model deciding whether to call it.
    pub description: String,
    /// The JSON Schema of the tool's input, without the `$schema` dialect marker.
    pub parameters: serde_json::Value,
}

impl ToolDef {
    /// The definition of tool `T`.
    #[must_use]
    pub fn of<T: Tool>() -> Self {
        Self::from(&ToolSpec::of::<T>())
    }

    /// The tool as an entry of OpenAI's `tools` list (Chat Completions):
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    #[must_use]
    pub fn to_openai(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        })
    }

    /// The tool as an entry of Anthropic's `tools` list (Messages API):
    /// `{"name", "description", "input_schema"}`.
    #[must_use]
    pub fn to_anthropic(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "input_schema": self.parameters,
        })
    }
}

impl From<&ToolSpec> for ToolDef {
    fn from(spec: &ToolSpec) -> Self {
        let mut parameters = spec.input_schema.clone().to_value();
        // Function-calling APIs do not expect the dialect marker.
        if let Some(object) = parameters.as_object_mut() {
            object.remove("$schema");
        }
        Self {
            name: spec.name.to_owned(),
            description: spec.description.to_owned(),
            parameters,
        }
    }
}

/// Structured output: the JSON Schema the model's final answer must follow.
///
/// OpenAI-compatible servers get it as `response_format: {"type": "json_schema", …}`;
/// Anthropic's Messages API gets it as one more tool, named [`name`](ResponseFormat::name),
/// whose input is the answer (its client turns a call of that tool back into the answer's
/// text).
///
/// ```
/// use flow_runtime::model::ResponseFormat;
///
/// #[derive(schemars::JsonSchema)]
/// struct Verdict { approve: bool, reason: String }
///
/// let format = ResponseFormat::of::<Verdict>();
/// assert_eq!(format.name, "Verdict");
/// assert_eq!(format.schema["type"], "object");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// A name for the answer's type: letters, digits, `_` and `-` only (the providers'
    /// rule for tool and schema names).
    pub name: String,
    /// The answer's JSON Schema, without the `$schema` dialect marker.
    pub schema: serde_json::Value,
    /// Ask an OpenAI-compatible server to enforce the schema strictly (`strict: true`), which
    /// OpenAI accepts only for schemas whose every object lists all its properties as
    /// `required` and sets `additionalProperties: false`. Off by default.
    #[serde(default)]
    pub strict: bool,
}

impl ResponseFormat {
    /// The format of answers of type `T`, named after `T`'s schema name (characters other
    /// than letters, digits, `_` and `-` become `_`).
    #[must_use]
    pub fn of<T: JsonSchema>() -> Self {
        let name = T::schema_name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut schema = schemars::schema_for!(T).to_value();
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
        }
        Self {
            name,
            schema,
            strict: false,
        }
    }

    /// The same format, enforced strictly by OpenAI-compatible servers: see
    /// [`strict`](ResponseFormat::strict).
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

/// One request to a chat model: the conversation so far, the tools offered, and how to
/// answer.
///
/// The model's name is not part of the request: it belongs to the client
/// (`OpenAiChat::new`), so that a journaled request stays
/// valid when a workflow moves to another model.
///
/// ```
/// use flow_runtime::model::{ChatRequest, Message, ResponseFormat};
///
/// #[derive(schemars::JsonSchema)]
/// struct Verdict { approve: bool }
///
/// let request = ChatRequest::new()
///     .system("You review refunds.")
///     .user("Refund order 42?")
///     .response_format(ResponseFormat::of::<Verdict>())
///     .max_tokens(200);
/// assert_eq!(request.messages.len(), 2);
/// assert_eq!(request.max_tokens, Some(200));
///
/// // Stable JSON, for journals.
/// let json = serde_json::to_string(&request).unwrap();
/// let back: ChatRequest = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, request);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    /// The schema of a structured answer, if one is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// The most tokens the answer may take. Anthropic's API requires a limit: its client
    /// sends its own default when this is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The sampling temperature, if not the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// An empty request.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The request with `message` appended.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// The request with a system message appended.
    #[must_use]
    pub fn system(self, content: impl Into<String>) -> Self {
        self.message(Message::system(content))
    }

    /// The request with a user message appended.
    #[must_use]
    pub fn user(self, content: impl Into<String>) -> Self {
        self.message(Message::user(content))
    }

    /// The request offering tool `T` as well.
    #[must_use]
    pub fn tool<T: Tool>(mut self) -> Self {
        self.tools.push(ToolDef::of::<T>());
        self
    }

    /// The request offering every tool of `catalogue` as well.
    #[must_use]
    pub fn tools(mut self, catalogue: &Catalogue) -> Self {
        self.tools
            .extend(catalogue.specs().iter().map(ToolDef::from));
        self
    }

    /// The request asking for a structured answer.
    #[must_use]
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// The request with an answer limited to `tokens` tokens.
    #[must_use]
    pub fn max_tokens(mut self, tokens: u32) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// The request with sampling temperature `temperature`.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }
}

/// Why the model stopped.
///
/// Serialised in `snake_case` (`"stop"`, `"tool_calls"`); a reason this crate does not know
/// is kept as `{"other": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// The answer is complete (OpenAI `stop`; Anthropic `end_turn`, `stop_sequence`, or a
    /// call of the structured-answer tool).
    Stop,
    /// The answer hit the token limit and is cut off (`length`, `max_tokens`).
    Length,
    /// The model wants tools called (`tool_calls`, `tool_use`).
    ToolCalls,
    /// The provider's content filter stopped the answer (`content_filter`).
    ContentFilter,
    /// The model refused (Anthropic `refusal`; an OpenAI message with a `refusal`).
    Refusal,
    /// A reason this crate does not know, as the provider wrote it.
    Other(String),
}

/// How many tokens a call used, as the provider counted them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read: the prompt, tools and conversation (OpenAI `prompt_tokens`).
    pub input_tokens: u64,
    /// Tokens written: the answer (OpenAI `completion_tokens`).
    pub output_tokens: u64,
}

/// A model's answer to one [`ChatRequest`].
///
/// ```
/// use flow_runtime::model::{ChatResponse, FinishReason, Message};
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Verdict { approve: bool }
///
/// let response: ChatResponse = serde_json::from_value(serde_json::json!({
///     "content": "{\"approve\": true}",
///     "finish_reason": "stop",
///     "usage": { "input_tokens": 12, "output_tokens": 4 },
/// })).unwrap();
/// assert_eq!(response.decode::<Verdict>().unwrap(), Verdict { approve: true });
/// assert_eq!(response.finish_reason, FinishReason::Stop);
/// assert_eq!(response.message(), Message::assistant("{\"approve\": true}"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The provider's id for the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model that answered, as the provider names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The answer's text (for a structured answer, its JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The tools the model asked to call, in its order: several in one answer are parallel
    /// tool calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// The tokens the call used; `None` when the server did not say (some OpenAI-compatible
    /// servers do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// A response with the given parts, for tests and for providers of your own.
    #[must_use]
    pub fn new(
        content: Option<String>,
        tool_calls: Vec<ToolCall>,
        finish_reason: FinishReason,
        usage: Option<Usage>,
    ) -> Self {
        Self {
            id: None,
            model: None,
            content,
            tool_calls,
            finish_reason,
            usage,
        }
    }

    /// The answer as the assistant message to append to the conversation.
    #[must_use]
    pub fn message(&self) -> Message {
        Message::Assistant {
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
        }
    }

    /// The answer's text decoded as `T`: a structured answer.
    ///
    /// # Errors
    ///
    /// The answer has no text, or its text is not JSON that fits `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, AnswerError> {
        let text = self.content.as_deref().ok_or(AnswerError::NoContent {
            finish_reason: self.finish_reason.clone(),
        })?;
        serde_json::from_str(text).map_err(|source| AnswerError::Decode { source })
    }
}

/// A model's answer is not the structured answer asked for: see [`ChatResponse::decode`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The answer has no text (it is tool calls only, or was cut off before any).
    #[error(
        "the model's answer has no text to decode (it stopped for {finish_reason:?}); ask \
         again, or answer its tool calls first"
    )]
    NoContent {
        /// Why the model stopped.
        finish_reason: FinishReason,
    },
    /// The answer's text is not JSON that fits the answer's type.
    #[error("the model's answer does not decode as the requested type: {source}")]
    Decode {
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}

/// A chat request is a tool's input only so that a model can be called like any tool; it is
/// never offered to a model itself, so its schema is left open.
impl JsonSchema for ChatRequest {
    fn schema_name() -> Cow<'static, str> {
        "ChatRequest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A chat request: flow_runtime::model::ChatRequest.",
        })
    }
}

/// As for [`ChatRequest`]: a model's answer is never described to a model.
impl JsonSchema for ChatResponse {
    fn schema_name() -> Cow<'static, str> {
        "ChatResponse".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A model's answer: flow_runtime::model::ChatResponse.",
        })
    }
}
