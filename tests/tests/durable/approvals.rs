//! Approvals bound to one tool call, under the engine, against the scripted model server on
//! loopback: a gated call parks the run with its tool, call id and arguments; the wrong call
//! id, a stale one and a decision after the deadline are refused with typed errors; an
//! approval survives a restart on the same SQLite file; a rejection goes back to the model,
//! which answers; an undecided call times out and is routed on; a step asking again with other
//! arguments than were approved is refused. (The compile-time half is in `ui/fail/approvals`.)

use flow_runtime::agent::AgentError;
use flow_runtime::model::OpenAiChat;
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::prelude::*;
use flow_runtime::state::{CallKind, Engine, RunResult, Setup};
use flow_runtime::store::{
    APPROVAL_EVENT, ApprovalError, Decision, MemoryStore, RunQueue, RunState, RunStatus,
};
use flow_runtime::tool::Denied;
use flow_tests::store::TempDb;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// An order to look up.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// The order's id.
    pub order: String,
}

/// A refund to pay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefundInput {
    /// The order's id.
    pub order: String,
    /// How much.
    pub amount: u32,
}

/// Looks an order up; counts its calls.
pub struct Lookup(Arc<AtomicU32>);

impl Tool for Lookup {
    type Input = Order;
    type Output = Value;
    const NAME: &'static str = "lookup";
    const DESCRIPTION: &'static str = "An order's status and amount.";

    async fn call(&self, _: &ToolCtx, input: Order) -> Result<Value, ToolError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(json!({ "order": input.order, "amount": 30, "status": "damaged" }))
    }
}

/// Pays a refund: needs a person's approval. Counts its calls and keeps the last input.
pub struct Refund(Arc<AtomicU32>, Arc<std::sync::Mutex<Option<RefundInput>>>);

impl Tool for Refund {
    type Input = RefundInput;
    type Output = String;
    const NAME: &'static str = "refund";
    const DESCRIPTION: &'static str = "Refunds an order.";

    async fn call(&self, _: &ToolCtx, input: RefundInput) -> Result<String, ToolError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let done = format!("refunded {} on {}", input.amount, input.order);
        *self.1.lock().unwrap() = Some(input);
        Ok(done)
    }
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Resolution {
    /// Whether the customer got money back.
    pub refunded: bool,
}

#[workflow]
pub mod support {
    use super::*;

    #[step(entry, exit, tools = [Lookup, Refund], approve = [Refund], timeout = Duration::from_secs(3600))]
    pub async fn resolve(
        ctx: &Ctx<(), tools::Resolve>,
        ticket: String,
    ) -> Result<Resolution, AgentError> {
        ctx.agent::<OpenAiChat>()
            .instructions("Resolve the ticket; refunds need approval.")
            .run(ticket)
            .await
    }
}

/// The same agent with a short approval timeout, routed on.
#[workflow]
pub mod hurry {
    use super::*;

    pub enum Outcome {
        #[to(done)]
        Resolved(Resolution),
        #[to(escalate)]
        NobodyApproved(String),
    }

    #[step(entry, routes = Outcome, tools = [Lookup, Refund], approve = [Refund], timeout = Duration::from_millis(300))]
    pub async fn resolve(
        ctx: &Ctx<(), tools::Resolve>,
        ticket: String,
    ) -> Result<Outcome, AgentError> {
        match ctx.agent::<OpenAiChat>().run(ticket).await {
            Ok(resolution) => Ok(Outcome::Resolved(resolution)),
            Err(AgentError::NotApproved {
                denied: Denied::TimedOut,
                call_id,
                ..
            }) => Ok(Outcome::NobodyApproved(call_id)),
            Err(e) => Err(e),
        }
    }

    #[step(after = resolve, exit)]
    pub async fn done(resolution: Resolution) -> Result<String, AgentError> {
        Ok(format!("resolved: {}", resolution.refunded))
    }

    #[step(after = resolve, exit)]
    pub async fn escalate(call_id: String) -> Result<String, AgentError> {
        Ok(format!("escalated {call_id}"))
    }
}

/// A step that asks for the approval itself, with an amount from its deps.
#[workflow(deps = Arc<AtomicU32>)]
pub mod payout {
    use super::*;

    #[step(entry, exit, tools = [Refund], approve = [Refund], timeout = Duration::from_secs(3600))]
    pub async fn pay(
        ctx: &Ctx<Arc<AtomicU32>, tools::Pay>,
        order: String,
    ) -> Result<String, CallError> {
        let amount = ctx.deps().load(Ordering::SeqCst);
        let approved = ctx
            .approval::<Refund>(RefundInput { order, amount })
            .await?;
        ctx.call_approved(approved).await
    }
}

/// `payout` with an approval that never times out (`Duration::MAX`).
#[workflow(deps = Arc<AtomicU32>)]
pub mod patient_payout {
    use super::*;

    #[step(entry, exit, tools = [Refund], approve = [Refund], timeout = Duration::MAX)]
    pub async fn pay(
        ctx: &Ctx<Arc<AtomicU32>, tools::Pay>,
        order: String,
    ) -> Result<String, CallError> {
        let amount = ctx.deps().load(Ordering::SeqCst);
        let approved = ctx
            .approval::<Refund>(RefundInput { order, amount })
            .await?;
        ctx.call_approved(approved).await
    }
}

/// Counters of the tools' calls, shared by every engine of a test.
#[derive(Clone, Default)]
struct Calls {
    lookups: Arc<AtomicU32>,
    refunds: Arc<AtomicU32>,
    refunded: Arc<std::sync::Mutex<Option<RefundInput>>>,
}

impl Calls {
    fn toolbox(&self, server: &ScriptedModel) -> Toolbox {
        let policy = ToolPolicy::default();
        Toolbox::new()
            .with(PolicyTool::new(
                Lookup(Arc::clone(&self.lookups)),
                policy.clone(),
            ))
            .with(PolicyTool::new(
                Refund(Arc::clone(&self.refunds), Arc::clone(&self.refunded)),
                policy.clone(),
            ))
            .with(PolicyTool::new(
                OpenAiChat::new(&server.openai_url(), "scripted").unwrap(),
                policy,
            ))
    }
}

/// Looks the order up, asks for a refund of 30, then answers.
fn script() -> Script {
    Script::new([
        Reply::tool_call("lookup", json!({ "order": "A1" })),
        Reply::tool_call("refund", json!({ "order": "A1", "amount": 30 })),
        Reply::answer(json!({ "refunded": true })),
    ])
}

fn engine<S: RunQueue>(store: &Arc<S>, calls: &Calls, server: &ScriptedModel) -> Engine<S> {
    Engine::builder(Arc::clone(store))
        .register::<support::Workflow>(Setup::new(()).tools(calls.toolbox(server)))
        .register::<hurry::Workflow>(Setup::new(()).tools(calls.toolbox(server)))
        .poll_interval(Duration::from_millis(20))
        .build()
}

/// Runs the engine until `run` waits for an approval; returns the pending request.
async fn until_pending<S: RunQueue>(
    engine: &Engine<S>,
    run: &RunId,
) -> flow_runtime::store::Approval {
    let store = Arc::clone(engine.store());
    engine
        .run_until(async {
            while store
                .status(run)
                .await
                .unwrap()
                .is_none_or(|info| info.approval.is_none())
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    store.status(run).await.unwrap().unwrap().approval.unwrap()
}

async fn until_finished<S: RunQueue>(engine: &Engine<S>, run: &RunId) {
    let store = Arc::clone(engine.store());
    engine
        .run_until(async {
            while store
                .status(run)
                .await
                .unwrap()
                .is_none_or(|info| info.status != RunStatus::Finished)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
}

/// The tool results (role `tool`) of the model's last request.
fn last_tool_results(server: &ScriptedModel) -> Vec<String> {
    let requests = server.requests();
    requests.last().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_gated_call_parks_the_run_with_its_tool_call_id_and_arguments() {
    let server = ScriptedModel::start(script()).await.unwrap();
    let calls = Calls::default();
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store, &calls, &server);
    let run = engine
        .start::<support::Workflow>("ticket-1", "my parcel arrived broken".into())
        .await
        .unwrap();
    let pending = until_pending(&engine, &run).await;
    assert_eq!(pending.tool, "refund");
    assert_eq!(pending.arguments, json!({ "order": "A1", "amount": 30 }));
    assert_eq!(pending.model_call_id.as_deref(), Some("call_1_0"));
    assert_eq!(pending.step, "resolve");
    let info = store.status(&run).await.unwrap().unwrap();
    assert_eq!(info.status, RunStatus::Running);
    match info.state() {
        RunState::AwaitingApproval {
            call_id,
            tool,
            arguments,
            ..
        } => {
            assert_eq!(
                (call_id.as_str(), tool.as_str()),
                (pending.call_id.as_str(), "refund")
            );
            assert_eq!(arguments, pending.arguments);
        }
        other => panic!("expected a pending approval, got {other:?}"),
    }
    assert_eq!(
        info.wait.as_ref().map(|w| w.0.as_str()),
        Some(APPROVAL_EVENT)
    );
    // Nothing was refunded; the run is not due, so the engine leaves it alone.
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
    assert!(
        store
            .due(std::time::SystemTime::now(), &["support"], 10)
            .await
            .unwrap()
            .is_empty()
    );

    engine.approve(&run, &pending.call_id).await.unwrap();
    until_finished(&engine, &run).await;
    let out = engine.outcome::<support::Workflow>(&run).await.unwrap();
    assert!(matches!(
        out,
        RunResult::Finished(Resolution { refunded: true })
    ));
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 1);
    // The resumed step replayed the lookup and the model's turns from the journal.
    assert_eq!(calls.lookups.load(Ordering::SeqCst), 1);
    for (key, count) in server.key_counts() {
        assert_eq!(count, 1, "model call {key} was sent {count} times");
    }
    assert_eq!(
        last_tool_results(&server),
        [
            r#"{"amount":30,"order":"A1","status":"damaged"}"#,
            r#""refunded 30 on A1""#
        ]
    );
}

#[tokio::test]
async fn the_wrong_call_id_and_a_stale_one_are_refused() {
    let server = ScriptedModel::start(script()).await.unwrap();
    let calls = Calls::default();
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store, &calls, &server);
    let run = engine
        .start::<support::Workflow>("ticket-2", "broken".into())
        .await
        .unwrap();
    let pending = until_pending(&engine, &run).await;

    match engine.approve(&run, "call_1_0").await {
        Err(ApprovalError::OtherCall {
            pending: p, tool, ..
        }) => assert_eq!(
            (p.as_str(), tool.as_str()),
            (pending.call_id.as_str(), "refund")
        ),
        other => panic!("expected OtherCall, got {other:?}"),
    }
    match engine
        .reject(&RunId::from("no-such-run"), &pending.call_id, "no")
        .await
    {
        Err(ApprovalError::UnknownRun { .. }) => {}
        other => panic!("expected UnknownRun, got {other:?}"),
    }
    // Refused decisions changed nothing: the call still waits.
    assert!(
        store
            .status(&run)
            .await
            .unwrap()
            .unwrap()
            .approval
            .is_some()
    );

    engine.approve(&run, &pending.call_id).await.unwrap();
    // The same id again is stale: decided already, never reused.
    match engine
        .reject(&run, &pending.call_id, "changed my mind")
        .await
    {
        Err(ApprovalError::Decided { decision, .. }) => {
            assert_eq!(decision, Decision::Approved { edited: None });
        }
        other => panic!("expected Decided, got {other:?}"),
    }
    until_finished(&engine, &run).await;
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 1);
    // Once finished, nothing waits.
    match engine.approve(&run, &pending.call_id).await {
        Err(ApprovalError::Decided { .. }) => {}
        other => panic!("expected Decided, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approval_survives_a_restart_on_sqlite_and_edits_apply() {
    let db = TempDb::new();
    let server = ScriptedModel::start(script()).await.unwrap();
    let calls = Calls::default();
    let run = RunId::from("ticket-3");
    let call_id = {
        let store = db.open();
        let engine = engine(&store, &calls, &server);
        engine
            .start::<support::Workflow>(run.clone(), "broken".into())
            .await
            .unwrap();
        until_pending(&engine, &run).await.call_id
    };
    // The process "restarts": a new store on the file, a new engine. The request is still
    // there, and an approval with edited arguments resumes the run.
    let store = db.open();
    let engine = engine(&store, &calls, &server);
    let info = store.status(&run).await.unwrap().unwrap();
    assert_eq!(
        info.approval.as_ref().map(|a| a.call_id.as_str()),
        Some(call_id.as_str())
    );
    engine
        .approve_with(&run, &call_id, json!({ "order": "A1", "amount": 25 }))
        .await
        .unwrap();
    until_finished(&engine, &run).await;
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 1);
    assert_eq!(
        *calls.refunded.lock().unwrap(),
        Some(RefundInput {
            order: "A1".into(),
            amount: 25
        })
    );
    assert_eq!(calls.lookups.load(Ordering::SeqCst), 1);
    for (key, count) in server.key_counts() {
        assert_eq!(count, 1, "model call {key} was sent {count} times");
    }
    // The history shows each call once (the parked turn's calls replayed, not repeated), the
    // model calls with their tokens.
    let history = store.history(&run).await.unwrap();
    let calls: Vec<_> = history
        .iter()
        .flat_map(|h| h.calls.iter())
        .map(|c| (c.kind, c.name.as_str(), c.index, c.usage.is_some()))
        .collect();
    assert_eq!(
        calls,
        [
            (CallKind::Model, "openai_chat", 0, true),
            (CallKind::Tool, "lookup", 1, false),
            (CallKind::Model, "openai_chat", 2, true),
            (CallKind::Tool, "refund", 3, false),
            (CallKind::Model, "openai_chat", 4, true),
        ]
    );
    let approvals = store.approvals(&run).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert!(matches!(
        approvals[0].decision,
        Some(Decision::Approved { edited: Some(_) })
    ));
}

#[tokio::test]
async fn a_rejection_goes_back_to_the_model_which_answers() {
    let server = ScriptedModel::start(Script::new([
        Reply::tool_call("lookup", json!({ "order": "A1" })),
        Reply::tool_call("refund", json!({ "order": "A1", "amount": 30 })),
        Reply::answer(json!({ "refunded": false })),
    ]))
    .await
    .unwrap();
    let calls = Calls::default();
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store, &calls, &server);
    let run = engine
        .start::<support::Workflow>("ticket-4", "broken".into())
        .await
        .unwrap();
    let pending = until_pending(&engine, &run).await;
    engine
        .reject(
            &run,
            &pending.call_id,
            "the parcel was insured; file a claim",
        )
        .await
        .unwrap();
    until_finished(&engine, &run).await;
    let out = engine.outcome::<support::Workflow>(&run).await.unwrap();
    assert!(matches!(
        out,
        RunResult::Finished(Resolution { refunded: false })
    ));
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
    let results = last_tool_results(&server);
    assert_eq!(results.len(), 2);
    assert!(
        results[1].contains("a person rejected this call of `refund`: the parcel was insured"),
        "{results:?}"
    );
}

#[tokio::test]
async fn an_undecided_call_times_out_and_is_routed_on() {
    let server = ScriptedModel::start(script()).await.unwrap();
    let calls = Calls::default();
    let store = Arc::new(MemoryStore::new());
    let engine = engine(&store, &calls, &server);
    let run = engine
        .start::<hurry::Workflow>("ticket-5", "broken".into())
        .await
        .unwrap();
    let pending = until_pending(&engine, &run).await;
    until_finished(&engine, &run).await;
    let out = engine.outcome::<hurry::Workflow>(&run).await.unwrap();
    match out {
        RunResult::Finished(text) => assert_eq!(text, format!("escalated {}", pending.call_id)),
        other => panic!("expected the escalation, got {other:?}"),
    }
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
    // A decision after the deadline is refused: the call timed out.
    match engine.approve(&run, &pending.call_id).await {
        Err(ApprovalError::Decided {
            decision: Decision::TimedOut,
            ..
        }) => {}
        other => panic!("expected Decided(TimedOut), got {other:?}"),
    }
}

#[tokio::test]
async fn an_approval_applies_only_to_the_arguments_it_was_given_for() {
    let db = TempDb::new();
    let calls = Calls::default();
    let amount = Arc::new(AtomicU32::new(30));
    let run = RunId::from("payout-1");
    let toolbox = || {
        Toolbox::new().with(PolicyTool::new(
            Refund(Arc::clone(&calls.refunds), Arc::clone(&calls.refunded)),
            ToolPolicy::default(),
        ))
    };
    let call_id = {
        let store = db.open();
        let engine = Engine::builder(Arc::clone(&store))
            .register::<payout::Workflow>(Setup::new(Arc::clone(&amount)).tools(toolbox()))
            .build();
        engine
            .start::<payout::Workflow>(run.clone(), "A1".into())
            .await
            .unwrap();
        let pending = until_pending(&engine, &run).await;
        assert_eq!(pending.arguments, json!({ "order": "A1", "amount": 30 }));
        pending.call_id
    };
    // Approved for 30; after a restart the step asks for 40 at the same place.
    amount.store(40, Ordering::SeqCst);
    let store = db.open();
    let engine = Engine::builder(Arc::clone(&store))
        .register::<payout::Workflow>(Setup::new(Arc::clone(&amount)).tools(toolbox()))
        .poll_interval(Duration::from_millis(20))
        .build();
    engine.approve(&run, &call_id).await.unwrap();
    engine
        .run_until(async {
            while store.status(&run).await.unwrap().unwrap().status != RunStatus::Failed {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
    let failure = store.status(&run).await.unwrap().unwrap().failure.unwrap();
    assert!(
        failure.reason.contains(r#"was approved with arguments {"amount":30,"order":"A1"}, but is asked with {"amount":40,"order":"A1"}"#),
        "{failure}"
    );
}

/// An approval whose timeout is too long to add to the clock (`Duration::MAX`) is pending
/// until the end of year 9999: it used to be due at once (its deadline was `now`), so the
/// engine's next turn timed it out and denied the call.
#[tokio::test]
async fn an_approval_of_duration_max_is_still_pending_after_a_resume() {
    let db = TempDb::new();
    let store = db.open();
    let calls = Calls::default();
    let run = RunId::from("patient-1");
    let engine = Engine::builder(Arc::clone(&store))
        .register::<patient_payout::Workflow>(Setup::new(Arc::new(AtomicU32::new(30))).tools(
            Toolbox::new().with(PolicyTool::new(
                Refund(Arc::clone(&calls.refunds), Arc::clone(&calls.refunded)),
                ToolPolicy::default(),
            )),
        ))
        .poll_interval(Duration::from_millis(20))
        .build();
    engine
        .start::<patient_payout::Workflow>(run.clone(), "A1".into())
        .await
        .unwrap();
    // Polls enough for the step to ask, and for a deadline of `now` to have been taken.
    engine
        .run_until(tokio::time::sleep(Duration::from_millis(300)))
        .await
        .unwrap();
    let info = store.status(&run).await.unwrap().unwrap();
    let until = info.approval.as_ref().map(|a| a.until);
    let end_of_9999 = std::time::UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    assert_eq!(until, Some(end_of_9999), "{info:?}");
    assert_eq!(info.status, RunStatus::Running);
    assert!(
        info.approval.as_ref().is_some_and(|a| a.is_pending()),
        "{info:?}"
    );
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_a_store_nobody_can_be_asked() {
    let calls = Calls::default();
    let toolbox = Toolbox::new().with(PolicyTool::new(
        Refund(Arc::clone(&calls.refunds), Arc::clone(&calls.refunded)),
        ToolPolicy::default(),
    ));
    let ctx = Ctx::builder(Arc::new(AtomicU32::new(30)))
        .tools(toolbox)
        .build();
    match payout::Workflow::run(&ctx, "A1".into()).await {
        Err(payout::FlowError::Pay(CallError::Approval { tool, .. })) => assert_eq!(tool, "refund"),
        other => panic!("expected CallError::Approval, got {other:?}"),
    }
    assert_eq!(calls.refunds.load(Ordering::SeqCst), 0);
}
