//! A support agent: a model chooses among the tools its step declares, in a loop, until it can
//! give a typed answer. The workflow runs under an `Engine` on an SQLite store.
//!
//! The step `answer` declares `tools = [LookUpOrder, TrackParcel]`: those two, and nothing
//! else, are offered to the model, and each call it makes is decoded into the tool's typed
//! input and made through the step's context (policy, idempotency key, the run's history). A
//! call the model can correct (arguments that do not decode, an unknown order) goes back to it
//! as a tool result. The answer is a `SupportReply`, asked for as structured output.
//!
//! By default the model is the scripted model server on loopback, so this runs with no setup:
//!
//! ```text
//! cargo run --example agent
//! ```
//!
//! `FLOW_MODEL_URL`, `FLOW_MODEL` and `FLOW_MODEL_KEY` point it at any OpenAI-compatible
//! endpoint over plain HTTP instead, e.g. a local Ollama:
//!
//! ```text
//! FLOW_MODEL_URL=http://localhost:11434/v1 FLOW_MODEL=llama3.2 cargo run --example agent
//! ```
//!
//! Not here yet: a tool that needs a person's approval, and `--crash-after N` (issue 12,
//! items 4 and 7).

use flow_runtime::agent::AgentError;
use flow_runtime::model::OpenAiChat;
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::prelude::*;
use flow_runtime::state::{Engine, RunResult, Setup};
use flow_runtime::store::SqliteStore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// An order to look up.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct OrderId {
    /// The order number, like `A-1042`.
    pub order: String,
}

/// What the shop knows about an order.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// `packed`, `shipped` or `delivered`.
    pub status: String,
    /// The carrier's tracking number, once shipped.
    pub tracking: Option<String>,
}

/// Looks an order up in the shop (a table here; the shop's API in real life).
#[derive(Debug)]
pub struct LookUpOrder;

impl Tool for LookUpOrder {
    type Input = OrderId;
    type Output = Order;
    const NAME: &'static str = "look_up_order";
    const DESCRIPTION: &'static str =
        "The status of an order, and its tracking number once shipped.";

    async fn call(&self, _: &ToolCtx, input: OrderId) -> Result<Order, ToolError> {
        match input.order.as_str() {
            "A-1042" => Ok(Order {
                status: "shipped".into(),
                tracking: Some("TRK-77".into()),
            }),
            "A-1043" => Ok(Order {
                status: "packed".into(),
                tracking: None,
            }),
            other => Err(ToolError::permanent(format!(
                "there is no order `{other}`: order numbers look like `A-1042`"
            ))),
        }
    }
}

/// A parcel to track.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Tracking {
    /// The carrier's tracking number.
    pub tracking: String,
}

/// Where a parcel is (the carrier's API in real life).
#[derive(Debug)]
pub struct TrackParcel;

impl Tool for TrackParcel {
    type Input = Tracking;
    type Output = String;
    const NAME: &'static str = "track_parcel";
    const DESCRIPTION: &'static str = "Where a parcel is now, by its tracking number.";

    async fn call(&self, _: &ToolCtx, input: Tracking) -> Result<String, ToolError> {
        match input.tracking.as_str() {
            "TRK-77" => Ok("at the local depot, out for delivery tomorrow".into()),
            other => Err(ToolError::permanent(format!(
                "unknown tracking number `{other}`"
            ))),
        }
    }
}

/// The agent's answer to the customer.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SupportReply {
    /// The order the question is about.
    pub order: String,
    /// The reply to send.
    pub reply: String,
}

#[workflow]
pub mod support {
    use super::{AgentError, Ctx, LookUpOrder, OpenAiChat, SupportReply, TrackParcel};

    /// The customer's message, trimmed.
    ///
    /// # Errors
    ///
    /// None: a step's error type is the workflow's to route on.
    #[step(entry)]
    pub async fn receive(message: String) -> Result<String, AgentError> {
        Ok(message.trim().to_owned())
    }

    /// The agent: the model chooses among the two tools declared here.
    ///
    /// # Errors
    ///
    /// The agent reached a cap, its answer never decoded, or a call failed for good: see
    /// `AgentError`.
    #[step(after = receive, exit, tools = [LookUpOrder, TrackParcel])]
    pub async fn answer(
        ctx: &Ctx<(), tools::Answer>,
        message: String,
    ) -> Result<SupportReply, AgentError> {
        ctx.agent::<OpenAiChat>()
            .instructions(
                "You answer a shop's customers. Look the order up, track its parcel if it \
                 has shipped, then answer with a SupportReply.",
            )
            .max_turns(6)
            .max_tool_calls(10)
            .run(message)
            .await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The model: a real endpoint if one is configured, else the scripted server.
    let (url, name, key, server) = if let Ok(url) = std::env::var("FLOW_MODEL_URL") {
        let name = std::env::var("FLOW_MODEL").unwrap_or_else(|_| "llama3.2".to_owned());
        (url, name, std::env::var("FLOW_MODEL_KEY").ok(), None)
    } else {
        let server = ScriptedModel::start(Script::new([
            Reply::tool_call("look_up_order", json!({ "order": "A-1042" })),
            // Malformed arguments: the error goes back to the model, which corrects itself.
            Reply::malformed_call("track_parcel", r#"{"tracking": TRK-77}"#),
            Reply::tool_call("track_parcel", json!({ "tracking": "TRK-77" })),
            Reply::answer(json!({
                "order": "A-1042",
                "reply": "Your order A-1042 has shipped and is at the local depot: \
                          it is out for delivery tomorrow.",
            })),
        ]))
        .await?;
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
    let tools = Toolbox::new()
        .with(PolicyTool::new(
            OpenAiChat::new(&url, &name)?,
            policy.build(),
        ))
        .with(PolicyTool::new(LookUpOrder, ToolPolicy::default()))
        .with(PolicyTool::new(TrackParcel, ToolPolicy::default()));

    let dir = std::env::temp_dir().join(format!("flow-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("runs.sqlite"))?);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<support::Workflow>(Setup::new(()).tools(tools))
        .build();
    let run = engine
        .start::<support::Workflow>("ticket-1", "  Where is my order A-1042?  ".to_owned())
        .await?;
    // The engine runs until the run has ended; its end is awaited without polling.
    let mut result = None;
    engine
        .run_until(async {
            result = Some(
                engine
                    .wait_for::<support::Workflow>(&run, Duration::from_mins(1))
                    .await,
            );
        })
        .await?;
    match result.ok_or("the engine stopped before the run ended")?? {
        RunResult::Finished(reply) => println!("{run}: {reply:?}"),
        RunResult::Failed(failure) => println!(
            "{run}: failed in step `{}`: {}",
            failure.step.as_deref().unwrap_or("-"),
            failure.reason
        ),
        RunResult::Unfinished(info) => println!("{run}: not finished: {:?}", info.state()),
        _ => println!("{run}: ?"),
    }
    println!("history of run `{run}`, from the store:");
    for entry in store.history(&run).await? {
        let step = if entry.step.is_empty() {
            "(started)"
        } else {
            entry.step.as_str()
        };
        println!("  #{:<2} after {step}", entry.seq);
        for call in &entry.calls {
            println!(
                "        {:?} {}: {} attempt(s), {:?}",
                call.kind, call.name, call.attempts, call.outcome
            );
        }
    }
    if let Some(server) = &server {
        println!("model requests: {}", server.requests().len());
    }
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
