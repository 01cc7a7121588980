//! OpenAI's Chat Completions API, as OpenAI and the servers compatible with it speak it.

use crate::model::trace::traced;
use crate::model::{
    ChatRequest, ChatResponse, FinishReason, Message, Model, ModelError, ToolCall, ToolDef, Usage,
};
use crate::tool::http::{HttpJson, HttpJsonError};
use crate::tool::{Auth, Credential, Tool, ToolCtx, ToolError};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use serde_json::{Value, json};
use std::borrow::Cow;

/// A chat model behind an OpenAI-compatible Chat Completions endpoint
/// (`POST {base}/chat/completions`): OpenAI itself, Ollama (`http://localhost:11434/v1`),
/// vLLM, llama.cpp's server, OpenRouter and others.
///
/// It is a [`Tool`] (`openai_chat`) from [`ChatRequest`] to [`ChatResponse`]: call it through
/// a [`PolicyTool`](crate::tool::PolicyTool) with a [`ToolPolicy`](crate::tool::ToolPolicy)
/// whose [`Auth`] is [`OpenAiChat::auth`], and every call gets the policy's timeout, retries
/// (429 and 5xx are transient and their `Retry-After` is honoured), rate limits and the
/// call's `Idempotency-Key` header. The key travels as a sensitive header and is taken out of
/// every error; `Debug` never shows it.
///
/// What is sent: `model`, `messages` (system, user, assistant with `tool_calls`, and `tool`
/// results; an assistant message with neither text nor tool calls goes as empty text, since
/// the API takes `content: null` only beside tool calls), `tools` (from
/// [`ToolDef::to_openai`](crate::model::ToolDef::to_openai)),
/// `response_format: {"type": "json_schema", …}` for a structured answer, `max_tokens`
/// (the name every compatible server accepts) and `temperature`.
///
/// ```no_run
/// use flow_runtime::model::{ChatRequest, OpenAiChat};
/// use flow_runtime::tool::{Credential, PolicyTool, ToolPolicy};
/// use std::time::Duration;
///
/// let model = OpenAiChat::openai("gpt-4.1-mini")?;
/// let policy = ToolPolicy::builder()
///     .auth(OpenAiChat::auth(Credential::from_env("OPENAI_API_KEY")))
///     .timeout(Duration::from_secs(60))
///     .build();
/// let model = PolicyTool::new(model, policy);
/// // model.call(&key, ChatRequest::new().user("Hello")).await?
/// # let _ = model;
///
/// // A local Ollama: no key needed.
/// let local = OpenAiChat::new("http://localhost:11434/v1", "llama3.2")?.provider_name("ollama");
/// # let _ = local;
/// # Ok::<(), flow_runtime::tool::http::HttpJsonError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenAiChat {
    http: HttpJson,
    model: String,
    provider: Cow<'static, str>,
    record_content: bool,
}

impl OpenAiChat {
    /// OpenAI's own API.
    pub const OPENAI_URL: &'static str = "https://api.openai.com/v1";

    /// Model `model` behind the Chat Completions API at `base_url` (the URL that
    /// `chat/completions` extends, e.g. `https://api.openai.com/v1`).
    ///
    /// # Errors
    ///
    /// `base_url` is not a usable base URL: see [`HttpJson::new`].
    pub fn new(base_url: &str, model: impl Into<String>) -> Result<Self, HttpJsonError> {
        Ok(Self::with_http(HttpJson::new(base_url)?, model))
    }

    /// Model `model` on OpenAI's API ([`OPENAI_URL`](OpenAiChat::OPENAI_URL)).
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built.
    pub fn openai(model: impl Into<String>) -> Result<Self, HttpJsonError> {
        Self::new(Self::OPENAI_URL, model)
    }

    /// Model `model` behind `http`'s base URL, with `http`'s client (timeouts, proxies, TLS
    /// roots, a body limit of your own).
    pub fn with_http(http: HttpJson, model: impl Into<String>) -> Self {
        Self {
            http,
            model: model.into(),
            provider: Cow::Borrowed("openai"),
            record_content: false,
        }
    }

    /// The same client, naming its provider `name` in traces (`gen_ai.provider.name`;
    /// `openai` by default).
    #[must_use]
    pub fn provider_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.provider = name.into();
        self
    }

    /// The same client, recording the messages sent and received in its spans
    /// (`gen_ai.input.messages`, `gen_ai.output.messages`) when `on`. Off by default:
    /// conversations often hold personal data.
    #[must_use]
    pub fn record_content(mut self, on: bool) -> Self {
        self.record_content = on;
        self
    }

    /// How OpenAI-compatible APIs take a key: `Authorization: Bearer <key>`. Put it in the
    /// model's [`ToolPolicy`](crate::tool::ToolPolicy).
    #[must_use]
    pub fn auth(key: Credential) -> Auth {
        Auth::bearer(key)
    }

    /// The request body for `request`.
    fn body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(wire_message).collect();
        let mut object = serde_json::Map::new();
        object.insert("model".to_owned(), self.model.clone().into());
        object.insert("messages".to_owned(), Value::Array(messages));
        if !request.tools.is_empty() {
            let tools = request.tools.iter().map(ToolDef::to_openai).collect();
            object.insert("tools".to_owned(), Value::Array(tools));
        }
        if let Some(format) = &request.response_format {
            object.insert(
                "response_format".to_owned(),
                json!({
                    "type": "json_schema",
                    "json_schema": {
                        "name": format.name,
                        "schema": format.schema,
                        "strict": format.strict,
                    },
                }),
            );
        }
        if let Some(max) = request.max_tokens {
            object.insert("max_tokens".to_owned(), max.into());
        }
        if let Some(temperature) = request.temperature {
            object.insert("temperature".to_owned(), f64::from(temperature).into());
        }
        Value::Object(object)
    }

    async fn attempt(
        &self,
        ctx: &ToolCtx,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ToolError> {
        let body = serde_json::to_vec(&self.body(request)).map_err(|e| {
            ModelError::InvalidRequest {
                provider: self.provider.clone(),
                why: format!("the request does not serialise to JSON ({e})"),
            }
            .into_tool_error()
        })?;
        let http = self
            .http
            .request(ctx, Method::POST, "chat/completions")?
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let answer = self.http.send_raw(http).await?;
        parse(&answer).map_err(|e| {
            ModelError::malformed(self.provider.clone(), "Chat Completions", &e).into_tool_error()
        })
    }
}

impl Tool for OpenAiChat {
    type Input = ChatRequest;
    type Output = ChatResponse;
    const NAME: &'static str = "openai_chat";
    const DESCRIPTION: &'static str = "A chat model behind an OpenAI-compatible API.";

    async fn call(&self, ctx: &ToolCtx, input: ChatRequest) -> Result<ChatResponse, ToolError> {
        traced(
            &self.provider,
            &self.model,
            self.record_content,
            &input,
            self.attempt(ctx, &input),
        )
        .await
    }
}

impl Model for OpenAiChat {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn model(&self) -> &str {
        &self.model
    }
}

/// One message in Chat Completions' form.
fn wire_message(message: &Message) -> Value {
    match message {
        Message::System { content } => json!({ "role": "system", "content": content }),
        Message::User { content } => json!({ "role": "user", "content": content }),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            // `content` may be null only beside tool calls: an answer with neither (a model
            // that said nothing) goes back as empty text, which the API takes.
            let content = match content {
                None if tool_calls.is_empty() => Some(""),
                content => content.as_deref(),
            };
            let mut wire = json!({ "role": "assistant", "content": content });
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|call| {
                        json!({
                            "id": call.id,
                            "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments },
                        })
                    })
                    .collect();
                wire["tool_calls"] = Value::Array(calls);
            }
            wire
        }
        Message::Tool {
            call_id, content, ..
        } => json!({ "role": "tool", "tool_call_id": call_id, "content": content }),
    }
}

#[derive(Deserialize)]
struct WireResponse {
    id: Option<String>,
    model: Option<String>,
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    /// A JSON string as OpenAI sends it; some compatible servers (Ollama) send an object.
    arguments: Value,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// Decodes a Chat Completions answer: its first choice.
fn parse(body: &[u8]) -> Result<ChatResponse, serde_json::Error> {
    use serde::de::Error as _;
    let wire: WireResponse = serde_json::from_slice(body)?;
    let choice = wire
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| serde_json::Error::missing_field("choices[0]"))?;
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| {
            let arguments = match call.function.arguments {
                Value::String(text) => text,
                other => other.to_string(),
            };
            ToolCall::new(call.id, call.function.name, arguments)
        })
        .collect();
    let (content, finish_reason) = if let Some(refusal) = choice.message.refusal {
        (Some(refusal), FinishReason::Refusal)
    } else {
        let reason = match choice.finish_reason.as_deref() {
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_owned()),
            // Some servers leave it out: infer it from the answer.
            None if tool_calls.is_empty() => FinishReason::Stop,
            None => FinishReason::ToolCalls,
        };
        (choice.message.content, reason)
    };
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        tool_calls,
        finish_reason,
        usage: wire.usage.map(|u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `models` feature brings `rustls`: the providers' https endpoints work as they are.
    #[cfg(feature = "rustls")]
    #[test]
    fn https_endpoints_work_out_of_the_box_with_tls() {
        assert!(OpenAiChat::openai("gpt-4.1-mini").is_ok());
        assert!(crate::model::AnthropicMessages::anthropic("claude-sonnet-4-5").is_ok());
    }

    /// `http` alone has no TLS: an https endpoint is refused at once, saying what to enable.
    #[cfg(not(feature = "rustls"))]
    #[test]
    fn https_endpoints_without_tls_say_to_enable_it() {
        let err = OpenAiChat::openai("gpt-4.1-mini").unwrap_err();
        assert!(
            matches!(err, HttpJsonError::HttpsWithoutTls { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("enable its `rustls` feature"),
            "{err}"
        );
    }

    #[test]
    fn a_response_without_choices_is_malformed() {
        let err = parse(br#"{"id":"x","choices":[]}"#).unwrap_err();
        assert_eq!(err.to_string(), "missing field `choices[0]`");
    }

    #[test]
    fn arguments_sent_as_an_object_are_kept_as_json_text() {
        let response = parse(
            br#"{"choices":[{"message":{"content":null,"tool_calls":[
                {"id":"c1","type":"function","function":{"name":"f","arguments":{"a":1}}}]}}]}"#,
        )
        .unwrap();
        assert_eq!(
            response.tool_calls,
            [ToolCall::new("c1", "f", r#"{"a":1}"#)]
        );
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(response.usage, None);
    }
}
