//! Models: chat requests and answers, tool calls, structured output, and clients for OpenAI-compatible and Anthropic APIs.
//!
//! The types ([`ChatRequest`], [`Message`], [`ToolCall`], [`ChatResponse`], …) are plain serde
//! types with a stable JSON shape, compiled whatever the features, so that a model call can be
//! journaled and replayed. A [`Model`] is a [`Tool`] whose input is a [`ChatRequest`] and
//! whose output is a [`ChatResponse`]: called through a [`PolicyTool`](crate::tool::PolicyTool)
//! (or a step's `ctx.call`), it gets the tool policy like any tool — credential, timeout,
//! retries on 429 and 5xx honouring `Retry-After`, rate limits, idempotency key.
//!
//! With the `models` feature (HTTP and HTTPS through reqwest and rustls) come two clients (the
//! `http` feature alone gives them over plain HTTP, for a model server on the same host):
//!
//! - `OpenAiChat`: OpenAI's Chat Completions, and every server that speaks it (Ollama,
//!   vLLM, llama.cpp's server, OpenRouter, …);
//! - `AnthropicMessages`: Anthropic's Messages API.
//!
//! Each call is a `chat` [tracing](https://docs.rs/tracing) span named and attributed after the
//! OpenTelemetry GenAI semantic conventions (`otel.name = "chat {model}"`,
//! `gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, …). Message content is recorded
//! (`gen_ai.input.messages`, `gen_ai.output.messages`) only when a client is asked to
//! (`OpenAiChat::record_content`).
//!
//! With the `scripted` feature, `scripted::ScriptedModel` is a model server on loopback that
//! plays a script in both wire formats, for tests and examples that need no network.

#[cfg(feature = "http")]
mod anthropic;
#[cfg(feature = "http")]
mod error;
#[cfg(feature = "http")]
mod openai;
#[cfg(feature = "scripted")]
pub mod scripted;
#[cfg(feature = "http")]
mod trace;
mod types;

#[cfg(feature = "http")]
pub use self::anthropic::AnthropicMessages;
#[cfg(feature = "http")]
pub use self::error::ModelError;
#[cfg(feature = "http")]
pub use self::openai::OpenAiChat;
pub use self::types::{
    AnswerError, ArgumentsError, ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat,
    ToolCall, ToolDef, Usage,
};

use crate::tool::Tool;

/// A chat model: a [`Tool`] from [`ChatRequest`] to [`ChatResponse`], which also says who
/// provides it and which model it is (for traces and history).
///
/// Implement it for a provider of your own: make [`Tool::call`] one attempt (one HTTP
/// request), classifying failures as [`ToolError::transient`](crate::tool::ToolError::transient)
/// (429, 5xx, a dropped connection) or permanent, and leave retries to the policy.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chat model: an agent talks to a `Model`",
    label = "not a `flow_runtime::model::Model`",
    note = "use a model client (`OpenAiChat`, `AnthropicMessages`) or implement `Model` for a `Tool` from `ChatRequest` to `ChatResponse`; the model is put in the run's `Toolbox`, not in `tools = [...]`"
)]
pub trait Model: Tool<Input = ChatRequest, Output = ChatResponse> {
    /// The provider, as OpenTelemetry's `gen_ai.provider.name` names it: `openai`,
    /// `anthropic`, or a name of your own for other servers.
    fn provider(&self) -> &str;

    /// The model asked for, e.g. `gpt-4.1-mini` (`gen_ai.request.model`).
    fn model(&self) -> &str;
}
