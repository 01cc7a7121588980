//! Anthropic's Messages API.

use crate::model::trace::traced;
use crate::model::{
    ChatRequest, ChatResponse, FinishReason, Message, Model, ModelError, ToolCall, ToolDef, Usage,
};
use crate::tool::http::{HttpJson, HttpJsonError};
use crate::tool::{Auth, Credential, Tool, ToolCtx, ToolError};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// The API version sent as `anthropic-version`.
const API_VERSION: &str = "2023-06-01";

/// The answer limit sent when a request sets none: the Messages API requires one.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A Claude model behind Anthropic's Messages API (`POST {base}/messages`).
///
/// It is a [`Tool`] (`anthropic_messages`) from [`ChatRequest`] to [`ChatResponse`], called
/// under a [`ToolPolicy`](crate::tool::ToolPolicy) as [`OpenAiChat`](crate::model::OpenAiChat)
/// is: put [`AnthropicMessages::auth`] (the `x-api-key` header) in the policy.
///
/// How the neutral request is written in this API:
///
/// - every [`Message::System`] goes, in order and joined by a blank line, into `system`;
/// - tool calls are `tool_use` blocks, tool results `tool_result` blocks of a user turn;
///   consecutive messages of the same role are merged into one turn, as the API requires;
/// - an assistant message with neither text nor tool calls (a model that answered nothing) is
///   left out: the API refuses a turn with no content;
/// - a structured answer ([`ChatRequest::response_format`]) is asked for as one more tool,
///   named after the format, whose input is the answer (forced with `tool_choice` when no
///   other tool is offered). A call of that tool comes back as the answer's text
///   ([`ChatResponse::content`], the tool's input as JSON, with [`FinishReason::Stop`] unless
///   other tools were called too); text beside it is dropped;
/// - `max_tokens` is the request's, or 4096 ([`default_max_tokens`](Self::default_max_tokens)).
///
/// Input tokens in [`Usage`] count the cached ones too (`input_tokens` +
/// `cache_creation_input_tokens` + `cache_read_input_tokens`), as OpenTelemetry asks.
///
/// ```no_run
/// use flow_runtime::model::AnthropicMessages;
/// use flow_runtime::tool::{Credential, PolicyTool, ToolPolicy};
///
/// let model = AnthropicMessages::anthropic("claude-sonnet-4-5")?;
/// let policy = ToolPolicy::builder()
///     .auth(AnthropicMessages::auth(Credential::from_env("ANTHROPIC_API_KEY")))
///     .build();
/// let model = PolicyTool::new(model, policy);
/// # let _ = model;
/// # Ok::<(), flow_runtime::tool::http::HttpJsonError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AnthropicMessages {
    http: HttpJson,
    model: String,
    max_tokens: u32,
    record_content: bool,
}

impl AnthropicMessages {
    /// Anthropic's own API.
    pub const ANTHROPIC_URL: &'static str = "https://api.anthropic.com/v1";

    /// Model `model` behind the Messages API at `base_url` (the URL that `messages` extends,
    /// e.g. `https://api.anthropic.com/v1`).
    ///
    /// # Errors
    ///
    /// `base_url` is not a usable base URL: see [`HttpJson::new`].
    pub fn new(base_url: &str, model: impl Into<String>) -> Result<Self, HttpJsonError> {
        Ok(Self::with_http(HttpJson::new(base_url)?, model))
    }

    /// Model `model` on Anthropic's API ([`ANTHROPIC_URL`](Self::ANTHROPIC_URL)).
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub fn anthropic(model: impl Into<String>) -> Result<Self, HttpJsonError> {
        Self::new(Self::ANTHROPIC_URL, model)
    }

    /// Model `model` behind `http`'s base URL, with `http`'s client.
    pub fn with_http(http: HttpJson, model: impl Into<String>) -> Self {
        Self {
            http,
            model: model.into(),
            max_tokens: DEFAULT_MAX_TOKENS,
            record_content: false,
        }
    }

    /// The same client, sending `max_tokens: tokens` when a request sets no limit (4096 by
    /// default).
    #[must_use]
    pub fn default_max_tokens(mut self, tokens: u32) -> Self {
        self.max_tokens = tokens;
        self
    }

    /// The same client, recording the messages sent and received in its spans when `on`:
    /// see [`OpenAiChat::record_content`](crate::model::OpenAiChat::record_content).
    #[must_use]
    pub fn record_content(mut self, on: bool) -> Self {
        self.record_content = on;
        self
    }

    /// How the Messages API takes a key: `x-api-key: <key>`. Put it in the model's
    /// [`ToolPolicy`](crate::tool::ToolPolicy).
    #[must_use]
    pub fn auth(key: Credential) -> Auth {
        Auth::api_key("x-api-key", key)
    }

    /// The request body for `request`.
    fn body(&self, request: &ChatRequest) -> Result<Value, ModelError> {
        let mut system = Vec::new();
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        for message in &request.messages {
            let (role, blocks) = match message {
                Message::System { content } => {
                    system.push(content.as_str());
                    continue;
                }
                Message::User { content } => {
                    ("user", vec![json!({ "type": "text", "text": content })])
                }
                Message::Assistant {
                    content,
                    tool_calls,
                } => {
                    let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                    if let Some(text) = content.as_deref().filter(|t| !t.is_empty()) {
                        blocks.push(json!({ "type": "text", "text": text }));
                    }
                    for call in tool_calls {
                        let input: Value = serde_json::from_str(&call.arguments).map_err(|_| {
                            ModelError::InvalidRequest {
                                provider: Cow::Borrowed("anthropic"),
                                why: format!(
                                    "the arguments of tool call `{}` (`{}`) are not JSON, and the \
                                     Messages API takes them as a JSON object; answer the call \
                                     with an error result instead of resending it",
                                    call.id, call.name
                                ),
                            }
                        })?;
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": call.id,
                            "name": call.name,
                            "input": input,
                        }));
                    }
                    // The API refuses a turn with no content: an answer that said nothing
                    // (no text, no call) says nothing to send back either.
                    if blocks.is_empty() {
                        continue;
                    }
                    ("assistant", blocks)
                }
                Message::Tool {
                    call_id,
                    content,
                    is_error,
                    ..
                } => (
                    "user",
                    vec![json!({
                        "type": "tool_result",
                        "tool_use_id": call_id,
                        "content": content,
                        "is_error": is_error,
                    })],
                ),
            };
            match turns.last_mut() {
                Some((last, previous)) if *last == role => previous.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }

        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect();
        let mut body = Map::new();
        body.insert("model".to_owned(), self.model.clone().into());
        body.insert(
            "max_tokens".to_owned(),
            request.max_tokens.unwrap_or(self.max_tokens).into(),
        );
        if !system.is_empty() {
            body.insert("system".to_owned(), system.join("\n\n").into());
        }
        body.insert("messages".to_owned(), Value::Array(messages));
        let mut tools: Vec<Value> = request.tools.iter().map(ToolDef::to_anthropic).collect();
        if let Some(format) = &request.response_format {
            tools.push(json!({
                "name": format.name,
                "description": "Give your final answer by calling this tool: its input is the answer.",
                "input_schema": format.schema,
            }));
            if request.tools.is_empty() {
                body.insert(
                    "tool_choice".to_owned(),
                    json!({ "type": "tool", "name": format.name }),
                );
            }
        }
        if !tools.is_empty() {
            body.insert("tools".to_owned(), Value::Array(tools));
        }
        if let Some(temperature) = request.temperature {
            body.insert("temperature".to_owned(), f64::from(temperature).into());
        }
        Ok(Value::Object(body))
    }

    async fn attempt(
        &self,
        ctx: &ToolCtx,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ToolError> {
        let body = self.body(request).map_err(ModelError::into_tool_error)?;
        let body = serde_json::to_vec(&body).map_err(|e| {
            ModelError::InvalidRequest {
                provider: Cow::Borrowed("anthropic"),
                why: format!("the request does not serialise to JSON ({e})"),
            }
            .into_tool_error()
        })?;
        let http = self
            .http
            .request(ctx, Method::POST, "messages")?
            .header(CONTENT_TYPE, "application/json")
            .header("anthropic-version", API_VERSION)
            .body(body);
        let answer = self.http.send_raw(http).await?;
        let answer_tool = request.response_format.as_ref().map(|f| f.name.as_str());
        parse(&answer, answer_tool).map_err(|e| {
            ModelError::malformed(Cow::Borrowed("anthropic"), "Messages", &e).into_tool_error()
        })
    }
}

impl Tool for AnthropicMessages {
    type Input = ChatRequest;
    type Output = ChatResponse;
    const NAME: &'static str = "anthropic_messages";
    const DESCRIPTION: &'static str = "A Claude model behind Anthropic's Messages API.";

    async fn call(&self, ctx: &ToolCtx, input: ChatRequest) -> Result<ChatResponse, ToolError> {
        traced(
            "anthropic",
            &self.model,
            self.record_content,
            &input,
            self.attempt(ctx, &input),
        )
        .await
    }
}

impl Model for AnthropicMessages {
    fn provider(&self) -> &'static str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.model
    }
}

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking blocks and whatever the API adds later: not part of the answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[allow(clippy::struct_field_names)] // The API's names.
struct WireUsage {
    input_tokens: u64,
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// Decodes a Messages answer; a call of `answer_tool` is the structured answer.
fn parse(body: &[u8], answer_tool: Option<&str>) -> Result<ChatResponse, serde_json::Error> {
    let wire: WireResponse = serde_json::from_slice(body)?;
    let mut text: Option<String> = None;
    let mut answer = None;
    let mut tool_calls = Vec::new();
    for block in wire.content {
        match block {
            WireBlock::Text { text: part } => text.get_or_insert_with(String::new).push_str(&part),
            WireBlock::ToolUse { name, input, .. } if Some(name.as_str()) == answer_tool => {
                answer = Some(input.to_string());
            }
            WireBlock::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall::new(id, name, input.to_string()));
            }
            WireBlock::Other => {}
        }
    }
    let finish_reason = match wire.stop_reason.as_deref() {
        _ if answer.is_some() && tool_calls.is_empty() => FinishReason::Stop,
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::Refusal,
        Some(other) => FinishReason::Other(other.to_owned()),
        None if tool_calls.is_empty() => FinishReason::Stop,
        None => FinishReason::ToolCalls,
    };
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content: answer.or(text),
        tool_calls,
        finish_reason,
        // The server's counts, added saturating: a huge one must not wrap (and so slip under
        // an agent's `max_input_tokens`) nor panic.
        usage: wire.usage.map(|u| Usage {
            input_tokens: u
                .input_tokens
                .saturating_add(u.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(u.cache_read_input_tokens.unwrap_or(0)),
            output_tokens: u.output_tokens,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_tool_results_share_one_user_turn() {
        let call_a = ToolCall::new("a", "f", "{}");
        let call_b = ToolCall::new("b", "g", r#"{"x":1}"#);
        let request = ChatRequest::new()
            .system("one")
            .system("two")
            .user("go")
            .message(Message::Assistant {
                content: None,
                tool_calls: vec![call_a.clone(), call_b.clone()],
            })
            .message(Message::tool_result(&call_a, "1"))
            .message(Message::tool_error(&call_b, "no"));
        let client = AnthropicMessages::new("http://127.0.0.1:9/v1", "m").unwrap();
        let body = client.body(&request).unwrap();
        assert_eq!(body["system"], "one\n\ntwo");
        assert_eq!(body["max_tokens"], 4096);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][1]["input"], json!({ "x": 1 }));
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"][1]["is_error"], true);
    }

    #[test]
    fn a_call_of_the_answer_tool_is_the_answer() {
        let body = br#"{"id":"m1","content":[{"type":"text","text":"Here:"},
            {"type":"tool_use","id":"t1","name":"Verdict","input":{"ok":true}}],
            "stop_reason":"tool_use",
            "usage":{"input_tokens":3,"output_tokens":2,"cache_read_input_tokens":5}}"#;
        let response = parse(body, Some("Verdict")).unwrap();
        assert_eq!(response.content.as_deref(), Some(r#"{"ok":true}"#));
        assert_eq!(response.finish_reason, FinishReason::Stop);
        assert!(response.tool_calls.is_empty());
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 8,
                output_tokens: 2
            })
        );
    }
}
