//! The `chat` span of a model call, after the OpenTelemetry GenAI semantic conventions.

use crate::model::{ChatRequest, ChatResponse, FinishReason};
use crate::tool::ToolError;
use std::future::Future;
use tracing::Instrument as _;
use tracing::field::Empty;

/// Runs one attempt of a model call (`call`) inside a `chat` span, and records what the
/// answer says about usage. Content is recorded only when `record_content` is on.
pub(crate) async fn traced<F>(
    provider: &str,
    model: &str,
    record_content: bool,
    request: &ChatRequest,
    call: F,
) -> Result<ChatResponse, ToolError>
where
    F: Future<Output = Result<ChatResponse, ToolError>>,
{
    // `otel.name` is how tracing-opentelemetry names a span whose name is not static.
    let span = crate::driver::trace::info_span_if_traced!(
        "chat",
        otel.name = %format_args!("chat {model}"),
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = %provider,
        gen_ai.request.model = %model,
        gen_ai.request.max_tokens = Empty,
        gen_ai.request.temperature = Empty,
        gen_ai.output.type = Empty,
        gen_ai.response.id = Empty,
        gen_ai.response.model = Empty,
        gen_ai.response.finish_reasons = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.input.messages = Empty,
        gen_ai.output.messages = Empty,
        error.type = Empty,
    );
    if let Some(max) = request.max_tokens {
        span.record("gen_ai.request.max_tokens", max);
    }
    if let Some(temperature) = request.temperature {
        span.record("gen_ai.request.temperature", f64::from(temperature));
    }
    if request.response_format.is_some() {
        span.record("gen_ai.output.type", "json");
    }
    if record_content
        && !span.is_disabled()
        && let Ok(messages) = serde_json::to_string(&request.messages)
    {
        span.record("gen_ai.input.messages", messages);
    }

    let result = call.instrument(span.clone()).await;
    match &result {
        Ok(response) => {
            if let Some(id) = &response.id {
                span.record("gen_ai.response.id", id.as_str());
            }
            if let Some(model) = &response.model {
                span.record("gen_ai.response.model", model.as_str());
            }
            // The convention's value is a list, one per choice; tracing records no lists, and
            // a response here is always one choice.
            span.record(
                "gen_ai.response.finish_reasons",
                finish_reason_name(&response.finish_reason),
            );
            if let Some(usage) = response.usage {
                span.record("gen_ai.usage.input_tokens", usage.input_tokens);
                span.record("gen_ai.usage.output_tokens", usage.output_tokens);
            }
            if record_content
                && !span.is_disabled()
                && let Ok(message) = serde_json::to_string(&[response.message()])
            {
                span.record("gen_ai.output.messages", message);
            }
        }
        Err(error) => {
            span.record(
                "error.type",
                if error.is_transient() {
                    "transient"
                } else {
                    "permanent"
                },
            );
        }
    }
    result
}

/// The convention's name for a finish reason.
fn finish_reason_name(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_call",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Refusal => "refusal",
        FinishReason::Other(other) => other,
    }
}
