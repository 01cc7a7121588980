//! A model choosing a tool, by hand: the calls an agent step will make, one at a time.
//!
//! The model is asked whether to take an umbrella in Oslo or Bergen, offered one tool,
//! `weather`, described from its own Rust types, and asked for a structured `Forecast` as its
//! final answer. Its first answer is two parallel tool calls; each is decoded into the tool's
//! typed input, run under the tool's policy, and its result sent back; the second answer is
//! the forecast, decoded into the Rust type. The model itself is a tool under a `ToolPolicy`:
//! the scripted server refuses the first request of each turn with a 503, which the policy
//! retries with the same idempotency key.
//!
//! By default the model is the scripted model server (`flow_runtime::model::scripted`) on
//! loopback, so this runs with no setup and no network:
//!
//! ```text
//! cargo run --example model_call
//! ```
//!
//! `FLOW_MODEL_URL`, `FLOW_MODEL` and `FLOW_MODEL_KEY` point it at any OpenAI-compatible
//! endpoint over plain HTTP instead (this example is built without TLS; the `models` feature
//! adds it), e.g. a local Ollama:
//!
//! ```text
//! FLOW_MODEL_URL=http://localhost:11434/v1 FLOW_MODEL=llama3.2 cargo run --example model_call
//! ```

use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::model::{ChatRequest, Message, OpenAiChat, ResponseFormat};
use flow_runtime::state::RunId;
use flow_runtime::tool::{
    Credential, IdempotencyKey, PolicyTool, Retry, Tool, ToolCtx, ToolError, ToolPolicy, Visit,
};
use flow_runtime::{JsonSchema, schemars};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The weather tool's input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct City {
    /// The city's name, e.g. `Oslo`.
    pub city: String,
}

/// Today's weather in a city.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Conditions {
    /// Temperature in °C.
    pub celsius: f32,
    /// Chance of rain, from 0 to 1.
    pub rain: f32,
}

/// Today's weather in a few Norwegian cities (a table here; an HTTP API in real life).
#[derive(Debug)]
pub struct Weather;

impl Tool for Weather {
    type Input = City;
    type Output = Conditions;
    const NAME: &'static str = "weather";
    const DESCRIPTION: &'static str = "Today's temperature and chance of rain in a city.";

    async fn call(&self, _ctx: &ToolCtx, input: City) -> Result<Conditions, ToolError> {
        let (celsius, rain) = match input.city.as_str() {
            "Oslo" => (14.0, 0.1),
            "Bergen" => (11.5, 0.9),
            "Trondheim" => (9.0, 0.4),
            other => {
                return Err(ToolError::permanent(format!(
                    "no weather for `{other}`: known cities are Oslo, Bergen and Trondheim"
                )));
            }
        };
        Ok(Conditions { celsius, rain })
    }
}

/// The model's final, structured answer.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Forecast {
    /// The city where an umbrella is needed, if any.
    pub umbrella_in: Option<String>,
    /// One sentence of advice.
    pub advice: String,
}

/// At most this many model turns.
const MAX_TURNS: u32 = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The model: a real endpoint if one is configured, else the scripted server.
    let (url, model_name, key, server) = if let Ok(url) = std::env::var("FLOW_MODEL_URL") {
        let model = std::env::var("FLOW_MODEL").unwrap_or_else(|_| "llama3.2".to_owned());
        let key = std::env::var("FLOW_MODEL_KEY").ok();
        (url, model, key, None)
    } else {
        let script = Script::new([
            Reply::tool_calls([
                ("weather", serde_json::json!({ "city": "Oslo" })),
                ("weather", serde_json::json!({ "city": "Bergen" })),
            ]),
            Reply::answer(serde_json::json!({
                "umbrella_in": "Bergen",
                "advice": "Take an umbrella to Bergen (90% chance of rain); Oslo stays dry.",
            })),
        ])
        .faults_per_key([Reply::status(503)]);
        let server = ScriptedModel::start(script).await?;
        println!("scripted model server on {}", server.addr());
        (
            server.openai_url(),
            "scripted".to_owned(),
            None,
            Some(server),
        )
    };

    let mut policy = ToolPolicy::builder()
        .timeout(Duration::from_mins(2))
        .retry(Retry::exponential(Duration::from_millis(100)).max_attempts(3));
    if let Some(key) = key {
        policy = policy.auth(OpenAiChat::auth(Credential::new(key)));
    }
    let model = PolicyTool::new(OpenAiChat::new(&url, &model_name)?, policy.build());
    let weather = PolicyTool::new(Weather, ToolPolicy::default());

    let run = RunId::from("model-call-example");
    let mut request = ChatRequest::new()
        .system("You plan trips. Use the weather tool, then answer with a Forecast.")
        .user("Do I need an umbrella in Oslo or Bergen today?")
        .tool::<Weather>()
        .response_format(ResponseFormat::of::<Forecast>())
        .max_tokens(400);

    // Call positions within this "step": model calls and tool calls each get their own key.
    let mut position = 0;
    let mut next_key = || {
        position += 1;
        IdempotencyKey::new(&run, "plan", Visit::FIRST, position - 1)
    };
    for turn in 0..MAX_TURNS {
        let answer = model.call(&next_key(), request.clone()).await?;
        let usage = answer.usage.unwrap_or_default();
        println!(
            "turn {turn}: {:?}, {} tool call(s), {} tokens in, {} out",
            answer.finish_reason,
            answer.tool_calls.len(),
            usage.input_tokens,
            usage.output_tokens
        );
        request.messages.push(answer.message());

        if answer.tool_calls.is_empty() {
            let forecast: Forecast = answer.decode()?;
            println!("forecast: {forecast:?}");
            if let Some(server) = &server {
                // Each model call was refused once (503) and retried with the same key.
                for (key, requests) in server.key_counts() {
                    println!("  model call {key}: {requests} request(s)");
                }
            }
            return Ok(());
        }
        // Each call's failure goes back to the model as a result it can correct.
        for call in &answer.tool_calls {
            let result = match call.name.as_str() {
                Weather::NAME => match call.decode::<City>() {
                    Ok(city) => match weather.call(&next_key(), city.clone()).await {
                        Ok(conditions) => {
                            println!("  {}({}) = {conditions:?}", call.name, city.city);
                            Ok(serde_json::to_string(&conditions)?)
                        }
                        Err(e) => Err(e.to_string()),
                    },
                    Err(e) => Err(e.to_string()),
                },
                other => Err(format!(
                    "there is no tool `{other}`; the only tool is `weather`"
                )),
            };
            request.messages.push(match result {
                Ok(content) => Message::tool_result(call, content),
                Err(why) => Message::tool_error(call, why),
            });
        }
    }
    Err(format!("no answer after {MAX_TURNS} turns").into())
}
