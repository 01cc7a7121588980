//! A support agent: a model chooses among the tools its step declares, in a loop, until it can
//! give a typed answer; one tool needs a person's approval. The workflow runs under an
//! `Engine` on an SQLite store.
//!
//! The step `answer` declares `tools = [LookUpOrder, TrackParcel, RefundShipping]`: those
//! three, and nothing else, are offered to the model, and each call it makes is decoded into
//! the tool's typed input and made through the step's context (policy, idempotency key, the
//! run's call journal and history). A call the model can correct (arguments that do not decode,
//! an unknown order) goes back to it as a tool result. `approve = [RefundShipping]`: when the
//! model asks for a refund, the run parks with the call (tool, call id, arguments) until a
//! person approves or rejects it; here the program plays that person and approves. The answer
//! is a `SupportReply`, asked for as structured output.
//!
//! By default the model is the scripted model server on loopback, so this runs with no setup:
//!
//! ```text
//! cargo run --example agent
//! ```
//!
//! `--crash-after N` ends the process abruptly (as a `SIGKILL` would) when its N+1-th model or
//! tool call is about to begin. Run it again without the flag: the run resumes from the store,
//! the N calls already made come back from the call journal, and only the rest are sent. The
//! printed history shows each call once, and the counts show what this process sent:
//!
//! ```text
//! cargo run --example agent -- --crash-after 3
//! cargo run --example agent
//! ```
//!
//! `FLOW_MODEL_URL`, `FLOW_MODEL` and `FLOW_MODEL_KEY` point it at any OpenAI-compatible
//! endpoint over plain HTTP instead, e.g. a local Ollama:
//!
//! `--decide-with-cli` leaves the approval to a person with the `flow` CLI: the program prints
//! the `flow approve` and `flow reject` commands for the pending call and waits (the engine
//! takes the decision at its next poll):
//!
//! ```text
//! cargo run --example agent -- --decide-with-cli
//! cargo run -p flow-cli -- --db /tmp/flow-example-agent/runs.sqlite approve ticket-1 <call id>
//! ```
//!
//! ```text
//! FLOW_MODEL_URL=http://localhost:11434/v1 FLOW_MODEL=llama3.2 cargo run --example agent
//! ```

use flow_runtime::agent::AgentError;
use flow_runtime::model::OpenAiChat;
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::prelude::*;
use flow_runtime::state::{CallKind, Engine, RunResult, Setup};
use flow_runtime::store::{RunStatus, SqliteStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// A shipping fee to refund.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ShippingRefund {
    /// The order.
    pub order: String,
    /// The amount, in cents.
    pub cents: u32,
}

/// Refunds an order's shipping fee (the payment provider's API in real life): money leaves
/// the shop, so each call needs a person's approval (`approve = [RefundShipping]`).
#[derive(Debug)]
pub struct RefundShipping(Arc<AtomicU32>);

impl Tool for RefundShipping {
    type Input = ShippingRefund;
    type Output = String;
    const NAME: &'static str = "refund_shipping";
    const DESCRIPTION: &'static str = "Refunds an order's shipping fee. Needs a person's approval.";

    async fn call(&self, _: &ToolCtx, input: ShippingRefund) -> Result<String, ToolError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(format!(
            "refunded {}.{:02} on {}",
            input.cents / 100,
            input.cents % 100,
            input.order
        ))
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
    use super::{
        AgentError, Ctx, Duration, LookUpOrder, OpenAiChat, RefundShipping, SupportReply,
        TrackParcel,
    };

    /// The customer's message, trimmed.
    ///
    /// # Errors
    ///
    /// None: a step's error type is the workflow's to route on.
    #[step(entry)]
    pub async fn receive(message: String) -> Result<String, AgentError> {
        Ok(message.trim().to_owned())
    }

    /// The agent: the model chooses among the three tools declared here; a refund waits up to
    /// a day for a person's approval.
    ///
    /// # Errors
    ///
    /// The agent reached a cap, its answer never decoded, a call failed for good, or nobody
    /// approved the refund in time: see `AgentError`.
    #[step(
        after = receive,
        exit,
        tools = [LookUpOrder, TrackParcel, RefundShipping],
        approve = [RefundShipping],
        timeout = Duration::from_hours(24),
    )]
    pub async fn answer(
        ctx: &Ctx<(), tools::Answer>,
        message: String,
    ) -> Result<SupportReply, AgentError> {
        ctx.agent::<OpenAiChat>()
            .instructions(
                "You answer a shop's customers. Look the order up, track its parcel if it \
                 has shipped, refund the shipping fee (499 cents) if the parcel is late, \
                 then answer with a SupportReply.",
            )
            .max_turns(8)
            .max_tool_calls(10)
            .run(message)
            .await
    }
}

/// Ends the process abruptly when its `limit + 1`-th model or tool call is about to begin: a
/// tracing layer that counts the `chat` spans (one per model request) and `execute_tool` spans
/// (one per tool call) of the GenAI conventions, which open before anything is sent.
struct CrashAfter {
    limit: u32,
    begun: AtomicU32,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CrashAfter {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let name = attrs.metadata().name();
        if (name == "chat" || name == "execute_tool")
            && self.begun.fetch_add(1, Ordering::SeqCst) >= self.limit
        {
            println!(
                "--crash-after {}: the process dies before its next call (exit code 137)",
                self.limit
            );
            // No destructors, no flushing of the store: as abrupt as a kill, short of one.
            std::process::exit(137);
        }
    }
}

/// The command line: `--crash-after N`, `--decide-with-cli`.
#[derive(Debug, Default)]
struct Args {
    crash_after: Option<u32>,
    /// A person decides the approval with `flow approve`/`flow reject`, not this program.
    decide_with_cli: bool,
}

fn args() -> Result<Args, String> {
    let usage = || "usage: agent [--crash-after N] [--decide-with-cli]".to_owned();
    let mut args = Args::default();
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        match flag.as_str() {
            "--crash-after" => {
                let n = given.next().ok_or_else(usage)?;
                args.crash_after =
                    Some(n.parse().map_err(|_| {
                        format!("--crash-after takes a number of calls, not `{n}`")
                    })?);
            }
            "--decide-with-cli" => args.decide_with_cli = true,
            _ => return Err(usage()),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    if let Some(limit) = args.crash_after {
        use tracing_subscriber::layer::SubscriberExt as _;
        let layer = CrashAfter {
            limit,
            begun: AtomicU32::new(0),
        };
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
    }
    // The model: a real endpoint if one is configured, else the scripted server, whose
    // answers depend only on the conversation, so a resumed run gets the same ones.
    let (url, name, key, server) = if let Ok(url) = std::env::var("FLOW_MODEL_URL") {
        let name = std::env::var("FLOW_MODEL").unwrap_or_else(|_| "llama3.2".to_owned());
        (url, name, std::env::var("FLOW_MODEL_KEY").ok(), None)
    } else {
        let server = ScriptedModel::start(Script::new([
            Reply::tool_call("look_up_order", json!({ "order": "A-1042" })),
            // Malformed arguments: the error goes back to the model, which corrects itself.
            Reply::malformed_call("track_parcel", r#"{"tracking": TRK-77}"#),
            Reply::tool_call("track_parcel", json!({ "tracking": "TRK-77" })),
            // Needs approval: the run parks until a person decides.
            Reply::tool_call(
                "refund_shipping",
                json!({ "order": "A-1042", "cents": 499 }),
            ),
            Reply::answer(json!({
                "order": "A-1042",
                "reply": "Your order A-1042 has shipped and is at the local depot: it is \
                          out for delivery tomorrow. We refunded the shipping fee for the delay.",
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
    let refunds = Arc::new(AtomicU32::new(0));
    let tools = Toolbox::new()
        .with(PolicyTool::new(
            OpenAiChat::new(&url, &name)?,
            policy.build(),
        ))
        .with(PolicyTool::new(LookUpOrder, ToolPolicy::default()))
        .with(PolicyTool::new(TrackParcel, ToolPolicy::default()))
        .with(PolicyTool::new(
            RefundShipping(Arc::clone(&refunds)),
            ToolPolicy::default(),
        ));

    // One file for every invocation, so that a run a crash interrupted is resumed; removed
    // once the run has ended.
    let dir = std::env::temp_dir().join("flow-example-agent");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("runs.sqlite");
    let resuming = path.exists();
    let store = Arc::new(SqliteStore::open(&path)?);
    let engine = Engine::builder(Arc::clone(&store))
        .register::<support::Workflow>(Setup::new(()).tools(tools))
        .poll_interval(Duration::from_millis(50))
        .build();
    // A run id is an idempotency key: after a crash this finds the stored run, and the engine
    // resumes it from its latest checkpoint.
    let run = engine
        .start::<support::Workflow>("ticket-1", "  Where is my order A-1042?  ".to_owned())
        .await?;
    if resuming {
        println!("resuming run `{run}` from {}", path.display());
    }
    // The engine runs until the run has ended; meanwhile this plays the person who approves,
    // or with --decide-with-cli says how to decide with the `flow` CLI, and waits.
    let mut told = None;
    engine
        .run_until(async {
            loop {
                match store.status(&run).await {
                    Ok(Some(info)) if info.status != RunStatus::Running => break,
                    Ok(Some(info)) => {
                        if let Some(pending) =
                            info.approval.as_ref().filter(|_| args.decide_with_cli)
                        {
                            if told.as_ref() != Some(&pending.call_id) {
                                println!(
                                    "approval asked: `{}` with {} (call {}); decide it with\n  \
                                     flow --db {} approve {run} {}\n  \
                                     flow --db {} reject {run} {} --reason '…'",
                                    pending.tool,
                                    pending.arguments,
                                    pending.call_id,
                                    path.display(),
                                    pending.call_id,
                                    path.display(),
                                    pending.call_id,
                                );
                                told = Some(pending.call_id.clone());
                            }
                        } else if let Some(pending) = info.approval {
                            println!(
                                "approval asked: `{}` with {} (call {}); approving",
                                pending.tool, pending.arguments, pending.call_id
                            );
                            if let Err(e) = engine.approve(&run, &pending.call_id).await {
                                println!("the approval was refused: {e}");
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        println!("could not read the run: {e}");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await?;
    match engine
        .wait_for::<support::Workflow>(&run, Duration::from_secs(1))
        .await?
    {
        RunResult::Finished(reply) => println!("{run}: {reply:?}"),
        RunResult::Failed(failure) => println!(
            "{run}: failed in step `{}`: {}",
            failure.step.as_deref().unwrap_or("-"),
            failure.reason
        ),
        RunResult::Unfinished(info) => println!("{run}: not finished: {:?}", info.state()),
        _ => println!("{run}: ?"),
    }
    println!("history of run `{run}`, from the store (each call once):");
    for entry in store.history(&run).await? {
        let step = if entry.step.is_empty() {
            "(started)"
        } else {
            entry.step.as_str()
        };
        println!("  #{:<2} after {step}", entry.seq);
        for call in &entry.calls {
            let tokens = match (call.kind, call.usage) {
                (CallKind::Model, Some(usage)) => format!(
                    ", {} tokens in, {} out",
                    usage.input_tokens, usage.output_tokens
                ),
                _ => String::new(),
            };
            println!(
                "        {:>2}. {:?} {}: {} attempt(s), {:?}{tokens}",
                call.index, call.kind, call.name, call.attempts, call.outcome
            );
        }
    }
    if let Some(server) = &server {
        println!(
            "sent by this process: {} model request(s), {} refund(s)",
            server.requests().len(),
            refunds.load(Ordering::SeqCst)
        );
    }
    drop(engine);
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
