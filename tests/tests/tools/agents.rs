//! Agents (`ctx.agent::<M>()`) against the scripted model server over real HTTP: the tools
//! offered are exactly the step's, tool calls reach the typed tools (concurrently when the model
//! asks for several at once), what the model can correct goes back to it, the answer is typed
//! and re-asked, and every cap is a typed outcome. (The compile-time half is in
//! `ui/fail/agents`.)

use flow_runtime::agent::{AgentError, AgentUsage, Cap, Price};
use flow_runtime::model::OpenAiChat;
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::prelude::*;
use flow_runtime::state::CallKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// The weather tool's input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct City {
    /// The city.
    pub city: String,
}

/// Today's temperature in a city; waits at `barrier` (when set) for the other calls of its
/// turn, so a test can tell that they run at the same time.
pub struct Weather {
    barrier: Option<Arc<Barrier>>,
}

impl Tool for Weather {
    type Input = City;
    type Output = f32;
    const NAME: &'static str = "weather";
    const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";

    async fn call(&self, _: &ToolCtx, input: City) -> Result<f32, ToolError> {
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        match input.city.as_str() {
            "Oslo" => Ok(14.0),
            "Bergen" => Ok(11.5),
            other => Err(ToolError::permanent(format!("no weather for `{other}`"))),
        }
    }
}

/// A temperature to convert: validated.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema, garde::Validate)]
pub struct Celsius {
    /// Degrees Celsius, from -90 to 60.
    #[garde(range(min = -90.0, max = 60.0))]
    pub celsius: f32,
}

/// °C to °F.
pub struct Fahrenheit;

impl Tool for Fahrenheit {
    type Input = Valid<Celsius>;
    type Output = f32;
    const NAME: &'static str = "fahrenheit";
    const DESCRIPTION: &'static str = "Converts °C to °F.";

    async fn call(&self, _: &ToolCtx, input: Valid<Celsius>) -> Result<f32, ToolError> {
        Ok(input.celsius * 9.0 / 5.0 + 32.0)
    }
}

/// Not declared by the agent's step: never offered.
pub struct Secret;

impl Tool for Secret {
    type Input = ();
    type Output = String;
    const NAME: &'static str = "secret";
    const DESCRIPTION: &'static str = "Never offered to the model.";

    async fn call(&self, _: &ToolCtx, (): ()) -> Result<String, ToolError> {
        Ok("leaked".into())
    }
}

/// The agent's typed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Forecast {
    /// Where it is warmest.
    pub warmest: String,
    /// Its temperature, in °F.
    pub fahrenheit: f32,
}

/// The caps of one test run.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    turns: u32,
    tool_calls: u32,
    input_tokens: u64,
    budget: Option<f64>,
    answer_retries: u32,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            turns: 8,
            tool_calls: 20,
            input_tokens: u64::MAX,
            budget: None,
            answer_retries: 2,
        }
    }
}

#[workflow(deps = Caps)]
pub mod plan {
    use super::*;
    use flow_runtime::agent::AgentUsage;

    #[step(entry, exit, tools = [Weather, Fahrenheit])]
    pub async fn forecast(
        ctx: &Ctx<Caps, tools::Forecast>,
        question: String,
    ) -> Result<(Forecast, AgentUsage), AgentError> {
        let caps = *ctx.deps();
        let mut agent = ctx
            .agent::<OpenAiChat>()
            .instructions("Find the warmest city; answer with a Forecast.")
            .max_turns(caps.turns)
            .max_tool_calls(caps.tool_calls)
            .max_input_tokens(caps.input_tokens)
            .answer_retries(caps.answer_retries);
        if let Some(max) = caps.budget {
            agent = agent.budget(Price::per_million_tokens(1_000.0, 4_000.0), max);
        }
        agent.run_with_usage(question).await
    }
}

fn answer() -> Value {
    json!({ "warmest": "Oslo", "fahrenheit": 57.2 })
}

fn tools(barrier: Option<Arc<Barrier>>, server: &ScriptedModel) -> Toolbox {
    let policy = ToolPolicy::builder()
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .build();
    Toolbox::new()
        .with(PolicyTool::new(Weather { barrier }, policy.clone()))
        .with(PolicyTool::new(Fahrenheit, policy.clone()))
        .with(PolicyTool::new(Secret, policy.clone()))
        .with(PolicyTool::new(
            OpenAiChat::new(&server.openai_url(), "scripted").unwrap(),
            policy,
        ))
}

async fn run_with(
    script: Script,
    caps: Caps,
    barrier: Option<Arc<Barrier>>,
) -> (
    Result<(Forecast, AgentUsage), plan::FlowError>,
    ScriptedModel,
    Ctx<Caps>,
) {
    let server = ScriptedModel::start(script).await.unwrap();
    let ctx = Ctx::builder(caps).tools(tools(barrier, &server)).build();
    let out = plan::Workflow::run(&ctx, "Oslo or Bergen?".into()).await;
    (out, server, ctx)
}

async fn run(
    script: Script,
) -> (
    Result<(Forecast, AgentUsage), plan::FlowError>,
    ScriptedModel,
) {
    let (out, server, _) = run_with(script, Caps::default(), None).await;
    (out, server)
}

/// The messages of the model's `n`-th request.
fn messages(server: &ScriptedModel, n: usize) -> Vec<Value> {
    server.requests()[n].body["messages"]
        .as_array()
        .unwrap()
        .clone()
}

/// The tool results of the model's `n`-th request (`role: tool`), as text.
fn tool_results(server: &ScriptedModel, n: usize) -> Vec<String> {
    messages(server, n)
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

fn cap_of(out: Result<(Forecast, AgentUsage), plan::FlowError>) -> (Cap, AgentUsage) {
    match out {
        Err(plan::FlowError::Forecast(AgentError::Cap { cap, usage })) => (cap, usage),
        other => panic!("expected a cap, got {other:?}"),
    }
}

#[tokio::test]
async fn the_model_is_offered_exactly_the_steps_tools_and_answers_typed() {
    let (out, server) = run(Script::new([
        Reply::tool_call("weather", json!({ "city": "Oslo" })),
        Reply::tool_call("fahrenheit", json!({ "celsius": 14.0 })),
        Reply::answer(answer()),
    ]))
    .await;
    let (forecast, usage) = out.unwrap();
    assert_eq!(
        forecast,
        Forecast {
            warmest: "Oslo".into(),
            fahrenheit: 57.2
        }
    );
    assert_eq!((usage.turns, usage.tool_calls), (3, 2));

    let first = &server.requests()[0].body;
    let offered: Vec<_> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    // Declared by the step, in its order; `secret` is in the toolbox but not the step's.
    assert_eq!(offered, ["weather", "fahrenheit"]);
    assert_eq!(first["response_format"]["json_schema"]["name"], "Forecast");
    assert_eq!(messages(&server, 0)[0]["role"], "system");
    assert_eq!(tool_results(&server, 1), ["14.0"]);
    assert_eq!(tool_results(&server, 2), ["14.0", "57.2"]);
}

#[tokio::test]
async fn model_and_tool_calls_are_the_steps_calls_in_order() {
    let (out, _server, ctx) = run_with(
        Script::new([
            Reply::tool_calls([
                ("weather", json!({ "city": "Oslo" })),
                ("weather", json!({ "city": "Bergen" })),
            ]),
            Reply::answer(answer()),
        ]),
        Caps::default(),
        None,
    )
    .await;
    out.unwrap();
    // One model call, the two tool calls it asked for (positions in the model's order), the
    // next model call: each recorded with the step's calls, each with its own key.
    let calls: Vec<_> = ctx
        .calls()
        .iter()
        .map(|c| (c.kind, c.name.clone(), c.index))
        .collect();
    assert_eq!(
        calls,
        [
            (CallKind::Model, "openai_chat".to_owned(), 0),
            (CallKind::Tool, "weather".to_owned(), 1),
            (CallKind::Tool, "weather".to_owned(), 2),
            (CallKind::Model, "openai_chat".to_owned(), 3),
        ]
    );
}

#[tokio::test]
async fn each_model_call_is_recorded_with_the_tokens_it_used() {
    let (out, _server, ctx) = run_with(
        Script::new([
            Reply::tool_call("weather", json!({ "city": "Oslo" })).usage(120, 8),
            Reply::answer(answer()).usage(150, 12),
        ]),
        Caps::default(),
        None,
    )
    .await;
    let (_, usage) = out.unwrap();
    let tokens: Vec<_> = ctx
        .calls()
        .iter()
        .map(|c| (c.kind, c.usage.map(|u| (u.input_tokens, u.output_tokens))))
        .collect();
    assert_eq!(
        tokens,
        [
            (CallKind::Model, Some((120, 8))),
            (CallKind::Tool, None),
            (CallKind::Model, Some((150, 12))),
        ]
    );
    assert_eq!((usage.input_tokens, usage.output_tokens), (270, 20));
}

#[tokio::test]
async fn parallel_tool_calls_of_one_turn_run_concurrently() {
    // Each call waits for the other at the barrier: run one after the other, they never finish.
    let barrier = Arc::new(Barrier::new(2));
    let (out, server, _) = run_with(
        Script::new([
            Reply::tool_calls([
                ("weather", json!({ "city": "Oslo" })),
                ("weather", json!({ "city": "Bergen" })),
            ]),
            Reply::answer(answer()),
        ]),
        Caps::default(),
        Some(barrier),
    )
    .await;
    out.unwrap();
    // The results go back in the model's order.
    assert_eq!(tool_results(&server, 1), ["14.0", "11.5"]);
}

#[tokio::test]
async fn malformed_and_invalid_arguments_go_back_to_the_model_to_correct() {
    let (out, server) = run(Script::new([
        Reply::malformed_call("weather", r#"{"city": "Os"#),
        Reply::tool_call("fahrenheit", json!({ "celsius": 900.0 })),
        Reply::tool_call("fahrenheit", json!({ "celsius": 14.0 })),
        Reply::answer(answer()),
    ]))
    .await;
    out.unwrap();
    let broken = tool_results(&server, 1);
    assert!(broken[0].contains("do not decode"), "{broken:?}");
    assert!(broken[0].contains("call `weather` again"), "{broken:?}");
    let invalid = tool_results(&server, 2);
    assert!(invalid[1].contains("celsius"), "{invalid:?}");
    assert_eq!(tool_results(&server, 3)[2], "57.2");
}

#[tokio::test]
async fn an_unknown_tool_and_a_permanent_error_go_back_to_the_model() {
    let (out, server) = run(Script::new([
        Reply::tool_calls([
            ("secret", json!(null)),
            ("weather", json!({ "city": "Atlantis" })),
        ]),
        Reply::answer(answer()),
    ]))
    .await;
    out.unwrap();
    let results = tool_results(&server, 1);
    assert_eq!(
        results[0],
        "there is no tool `secret`; call one of the tools offered: `weather`, `fahrenheit`"
    );
    assert_eq!(
        results[1],
        "tool `weather` refused the call: no weather for `Atlantis`"
    );
}

#[tokio::test]
async fn an_answer_that_does_not_decode_is_asked_again() {
    let (out, server) = run(Script::new([
        Reply::text("Oslo, I think."),
        Reply::answer(answer()),
    ]))
    .await;
    assert_eq!(out.unwrap().0.warmest, "Oslo");
    let again = messages(&server, 1);
    let last = again.last().unwrap();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .contains("does not decode"),
        "{last}"
    );
}

#[tokio::test]
async fn an_answer_that_never_decodes_is_a_typed_error() {
    let caps = Caps {
        answer_retries: 1,
        ..Caps::default()
    };
    let (out, server, _) = run_with(
        Script::new([Reply::text("Oslo."), Reply::text("Still Oslo.")]),
        caps,
        None,
    )
    .await;
    let Err(plan::FlowError::Forecast(AgentError::Answer { asks, usage, .. })) = out else {
        panic!("expected an answer error, got {out:?}");
    };
    assert_eq!((asks, usage.turns), (2, 2));
    assert_eq!(server.requests().len(), 2);
}

fn endless_tool_calls() -> Script {
    Script::new(
        std::iter::repeat_n(
            Reply::tool_calls([
                ("weather", json!({ "city": "Oslo" })),
                ("weather", json!({ "city": "Bergen" })),
            ])
            .usage(1_000, 100),
            10,
        )
        .chain([Reply::answer(answer())]),
    )
}

#[tokio::test]
async fn the_turn_cap_is_a_typed_outcome() {
    let caps = Caps {
        turns: 3,
        ..Caps::default()
    };
    let (out, server, _) = run_with(endless_tool_calls(), caps, None).await;
    let (cap, usage) = cap_of(out);
    assert_eq!(cap, Cap::Turns(3));
    assert_eq!((usage.turns, usage.tool_calls), (3, 6));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn the_tool_call_cap_runs_none_of_the_turns_calls_past_it() {
    let caps = Caps {
        tool_calls: 3,
        ..Caps::default()
    };
    let (out, server, ctx) = run_with(endless_tool_calls(), caps, None).await;
    let (cap, usage) = cap_of(out);
    assert_eq!(cap, Cap::ToolCalls(3));
    assert_eq!((usage.turns, usage.tool_calls), (2, 2));
    assert_eq!(server.requests().len(), 2);
    let weather = ctx.calls().iter().filter(|c| c.name == "weather").count();
    assert_eq!(weather, 2);
}

#[tokio::test]
async fn token_and_cost_caps_stop_after_the_call_that_crosses_them() {
    let caps = Caps {
        input_tokens: 2_500,
        ..Caps::default()
    };
    let (out, _, _) = run_with(endless_tool_calls(), caps, None).await;
    let (cap, usage) = cap_of(out);
    assert_eq!(cap, Cap::InputTokens(2_500));
    assert_eq!((usage.turns, usage.input_tokens), (3, 3_000));

    // 1_000 in at 1_000 per million and 100 out at 4_000 per million: 1.4 per turn.
    let caps = Caps {
        budget: Some(4.0),
        ..Caps::default()
    };
    let (out, _, _) = run_with(endless_tool_calls(), caps, None).await;
    let (cap, usage) = cap_of(out);
    assert_eq!(cap, Cap::Cost(4.0));
    assert_eq!(usage.turns, 3);
    assert!((usage.cost - 4.2).abs() < 1e-9, "{usage:?}");
}

#[tokio::test]
async fn a_model_missing_from_the_toolbox_fails_the_step() {
    let server = ScriptedModel::start(Script::new([Reply::answer(answer())]))
        .await
        .unwrap();
    let tools = Toolbox::new()
        .with(PolicyTool::new(
            Weather { barrier: None },
            ToolPolicy::default(),
        ))
        .with(PolicyTool::new(Fahrenheit, ToolPolicy::default()));
    let ctx = Ctx::builder(Caps::default()).tools(tools).build();
    let out = plan::Workflow::run(&ctx, "Oslo or Bergen?".into()).await;
    let Err(plan::FlowError::Forecast(AgentError::Model(CallError::NotRegistered { tool }))) = out
    else {
        panic!("expected a missing model, got {out:?}");
    };
    assert_eq!(tool, "openai_chat");
    assert!(server.requests().is_empty());
}
