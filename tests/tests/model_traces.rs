//! What model calls leave in traces, over real HTTP against the scripted model server: each
//! call is a `chat` span after the OpenTelemetry GenAI conventions, message content only when
//! asked for, and the key in no log line, error or `Debug` output. And what runs leave in
//! OpenTelemetry (`otel.rs`): one trace per run across a crash and a resume, exported over OTLP.
//!
//! One test runs every check in turn: tracing caches which callsites a subscriber wants per
//! process, so tests installing subscribers on concurrent threads would see each other's
//! caches (and miss spans).

use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::model::{ChatRequest, OpenAiChat};
use flow_runtime::prelude::*;
use flow_runtime::tool::{CallError, PolicyTool, Retry, ToolPolicy};
use flow_tests::model::{BOTH, Client, KEY, call_with, policy};
use flow_tests::trace::Captured;
use serde::{Deserialize, Serialize};
use std::time::Duration;

async fn serve(script: Script) -> ScriptedModel {
    ScriptedModel::start(script).await.unwrap()
}

/// The error and every error under it, as `Display` and `Debug`.
fn all_of(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{err}\n{err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(&format!("\n{e}\n{e:?}"));
        source = e.source();
    }
    out
}

// In a directory of its own, so that cargo does not take it for a test binary.
#[path = "model_traces/otel.rs"]
mod otel;

#[tokio::test]
async fn model_calls_and_runs_in_traces() {
    each_call_is_a_genai_span_without_content_unless_asked().await;
    the_key_never_shows_in_errors_debug_or_logs().await;
    each_tool_call_of_an_agent_is_an_execute_tool_span().await;
    otel::a_run_is_one_trace_across_a_crash_and_a_resume().await;
    otel::a_crash_in_the_first_step_resumes_in_the_run_trace().await;
    otel::a_started_run_parks_and_resumes_in_its_start_trace().await;
    otel::a_failed_step_and_its_run_have_an_error_status().await;
    otel::a_refused_start_is_not_a_failed_run().await;
    otel::spans_are_exported_over_otlp_to_a_collector().await;
}

async fn the_key_never_shows_in_errors_debug_or_logs() {
    let captured = Captured::default();
    let _guard = captured.install_with_spans();
    for client in BOTH {
        // A server that echoes the credential back in its error, as some do.
        let server = serve(Script::new([Reply::body(
            401,
            format!(r#"{{"error": "invalid key {KEY} (Bearer {KEY})"}}"#),
        )]))
        .await;

        let err = call_with(
            &server,
            client,
            policy(client),
            true,
            "k",
            ChatRequest::new().user("hi"),
        )
        .await
        .unwrap_err();

        assert!(matches!(err, CallError::Rejected { .. }), "{err:?}");
        let text = all_of(&err);
        assert!(text.contains("401"), "{text}");
        assert!(
            !text.contains(KEY),
            "{client:?}: the key is in the error: {text}"
        );
        assert!(text.contains("[REDACTED]"), "{text}");
        let shown = format!("{:?}", policy(client));
        assert!(!shown.contains(KEY), "{shown}");
        let model = PolicyTool::new(
            OpenAiChat::new("http://127.0.0.1:9/v1", "m").unwrap(),
            policy(client),
        );
        assert!(!format!("{model:?}").contains(KEY));
        assert!(!format!("{:?}", server.requests()).contains(KEY));
    }
    let logs = captured.text();
    assert!(logs.contains("chat"), "{logs}");
    assert!(!logs.contains(KEY), "the key is in the logs: {logs}");
}

// ---------------------------------------------------------------------------------------------
// Traces.

async fn each_call_is_a_genai_span_without_content_unless_asked() {
    for client in BOTH {
        let captured = Captured::default();
        let guard = captured.install_with_spans();
        let server = serve(Script::new([Reply::text("Sunny in Oslo.").usage(12, 7)])).await;
        let request = ChatRequest::new()
            .user("Is it sunny in Oslo?")
            .max_tokens(50);

        call_with(&server, client, policy(client), false, "k", request.clone())
            .await
            .unwrap();
        let quiet = captured.text();
        call_with(&server, client, policy(client), true, "k2", request)
            .await
            .unwrap();
        drop(guard);
        let loud = captured.text()[quiet.len()..].to_owned();

        let (provider, model) = match client {
            Client::OpenAi => ("openai", "scripted-gpt"),
            Client::Anthropic => ("anthropic", "scripted-claude"),
        };
        for expected in [
            format!("otel.name=chat {model}"),
            "gen_ai.operation.name=\"chat\"".to_owned(),
            format!("gen_ai.provider.name={provider}"),
            format!("gen_ai.request.model={model}"),
            "gen_ai.request.max_tokens=50".to_owned(),
            "gen_ai.usage.input_tokens=12".to_owned(),
            "gen_ai.usage.output_tokens=7".to_owned(),
            "gen_ai.response.finish_reasons=\"stop\"".to_owned(),
        ] {
            assert!(
                quiet.contains(&expected),
                "{client:?}: no `{expected}` in {quiet}"
            );
        }
        assert!(
            !quiet.contains("Oslo"),
            "{client:?}: content recorded unasked: {quiet}"
        );
        assert!(!quiet.contains("gen_ai.input.messages"), "{quiet}");
        assert!(loud.contains("gen_ai.input.messages"), "{loud}");
        assert!(loud.contains("Is it sunny in Oslo?"), "{loud}");
        assert!(loud.contains("Sunny in Oslo."), "{loud}");
    }
}

// ---------------------------------------------------------------------------------------------
// An agent's tool calls.

/// The weather tool's input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct City {
    /// The city.
    pub city: String,
}

/// Today's temperature in a city.
pub struct Weather;

impl Tool for Weather {
    type Input = City;
    type Output = f32;
    const NAME: &'static str = "weather";
    const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";

    async fn call(&self, _: &ToolCtx, input: City) -> Result<f32, ToolError> {
        match input.city.as_str() {
            "Oslo" => Ok(14.0),
            other => Err(ToolError::permanent(format!("no weather for `{other}`"))),
        }
    }
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Warmest {
    /// The city.
    pub city: String,
}

#[workflow]
pub mod forecast {
    use super::*;

    #[step(entry, exit, tools = [Weather])]
    pub async fn ask(
        ctx: &Ctx<(), tools::Ask>,
        question: String,
    ) -> Result<Warmest, flow_runtime::agent::AgentError> {
        ctx.agent::<OpenAiChat>().run(question).await
    }
}

async fn each_tool_call_of_an_agent_is_an_execute_tool_span() {
    let captured = Captured::default();
    let guard = captured.install_with_spans();
    let server = serve(Script::new([
        Reply::tool_calls([
            ("weather", serde_json::json!({ "city": "Oslo" })),
            ("weather", serde_json::json!({ "city": "Bergen" })),
        ]),
        Reply::answer(serde_json::json!({ "city": "Oslo" })),
    ]))
    .await;
    let policy = ToolPolicy::builder()
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(2))
        .build();
    let tools = Toolbox::new()
        .with(PolicyTool::new(Weather, policy.clone()))
        .with(PolicyTool::new(
            OpenAiChat::new(&server.openai_url(), "scripted-gpt").unwrap(),
            policy,
        ));
    let ctx = Ctx::builder(()).tools(tools).build();
    let answer = forecast::Workflow::run(&ctx, "Oslo or Bergen?".into())
        .await
        .unwrap();
    drop(guard);
    assert_eq!(answer.city, "Oslo");
    let logs = captured.text();
    let spans: Vec<&str> = logs
        .lines()
        // Each span's own line when it closes (events inside it carry its fields too).
        .filter(|l| l.contains("execute_tool{") && l.contains(": flow_runtime::agent: close "))
        .collect();
    assert_eq!(
        spans.len(),
        2,
        "one execute_tool span per tool call: {logs}"
    );
    for expected in [
        "otel.name=execute_tool weather",
        "gen_ai.tool.name=\"weather\"",
        "gen_ai.tool.call.id=call_0_0",
        "gen_ai.tool.type=\"function\"",
    ] {
        assert!(
            spans[0].contains(expected),
            "no `{expected}` in {}",
            spans[0]
        );
    }
    // The second call's tool refused (no weather for Bergen): the model is told, and the span
    // says it ended in an error.
    assert!(
        spans[1].contains("gen_ai.tool.call.id=call_0_1"),
        "{}",
        spans[1]
    );
    assert!(
        spans[1].contains("error.type=\"tool_error\""),
        "{}",
        spans[1]
    );
    assert!(!spans[0].contains("error.type"), "{}", spans[0]);
    assert!(
        !logs.contains("Bergen\""),
        "arguments are content, not recorded: {logs}"
    );
}
