//! The call journal: a step run again gets its completed calls' results from the store instead
//! of calling the tool again; only calls never recorded run, with the same idempotency keys.

use flow_runtime::prelude::*;
use flow_runtime::store::{JournalResult, SqliteStore, Store};
use flow_runtime::tool::{CallError, IdempotencyKey, PolicyTool, ToolPolicy, Toolbox, Visit};
use flow_tests::keyed::{KeyedService, Mix, mix};
use flow_tests::store::TempDb;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether step `work` fails after its second call (once).
#[derive(Debug, Default)]
pub struct Deps {
    fail_after_two: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the planned failure after the second call")]
    Planned,
}

#[workflow(deps = Deps)]
pub mod journaled {
    use super::*;

    #[step(entry, tools = [Mix])]
    pub async fn work(ctx: &Ctx<Deps, tools::Work>, n: u64) -> Result<u64, WorkError> {
        let a = ctx.call::<Mix>(n).await?;
        let b = ctx.call::<Mix>(n + 1).await?;
        if ctx.deps().fail_after_two.swap(false, Ordering::SeqCst) {
            return Err(WorkError::Planned);
        }
        let c = ctx.call::<Mix>(n + 2).await?;
        Ok(a.wrapping_add(b).wrapping_add(c))
    }

    #[step(after = work, exit, tools = [Mix])]
    pub async fn finish(ctx: &Ctx<Deps, tools::Finish>, sum: u64) -> Result<u64, CallError> {
        ctx.call::<Mix>(sum).await
    }
}

fn ctx(store: &Arc<SqliteStore>, origin: &str, fail: bool) -> Ctx<Deps> {
    let tools = Toolbox::new().with(PolicyTool::new(
        Mix::new(origin).unwrap(),
        ToolPolicy::default(),
    ));
    Ctx::builder(Deps {
        fail_after_two: AtomicBool::new(fail),
    })
    .run_id("r1")
    .store(Arc::clone(store))
    .tools(tools)
    .build()
}

#[tokio::test]
async fn a_step_run_again_replays_its_journaled_calls_and_makes_only_the_others() {
    let (service, origin) = KeyedService::start().await;
    let db = TempDb::new();
    let store = db.open();

    let first = journaled::Workflow::run(&ctx(&store, &origin, true), 10).await;
    assert!(first.is_err(), "the planned failure fails the run");
    assert_eq!(
        service.counts().len(),
        2,
        "two calls made before the failure"
    );

    // The same run, after a restart: a new store handle on the same file.
    drop(store);
    let store = db.open();
    let ctx = ctx(&store, &origin, false);
    let out = journaled::Workflow::run_or_resume(&ctx, 10).await.unwrap();
    let sum = mix(10).wrapping_add(mix(11)).wrapping_add(mix(12));
    assert_eq!(out, mix(sum));

    let run = RunId::from("r1");
    let keys = [
        IdempotencyKey::new(&run, "work", Visit::FIRST, 0),
        IdempotencyKey::new(&run, "work", Visit::FIRST, 1),
        IdempotencyKey::new(&run, "work", Visit::FIRST, 2),
        IdempotencyKey::new(&run, "finish", Visit::FIRST, 0),
    ];
    let counts = service.counts();
    for key in &keys {
        assert_eq!(
            counts.get(key.as_str()),
            Some(&1),
            "every call was sent once, journaled ones not again: {counts:?}"
        );
    }
    assert_eq!(counts.len(), keys.len());

    // The history shows each call once, the replayed ones with the step that completed.
    let history = store.history(&run).await.unwrap();
    let calls: Vec<(String, u32)> = history
        .iter()
        .flat_map(|h| h.calls.iter().map(|c| (c.step.clone(), c.index)))
        .collect();
    assert_eq!(
        calls,
        [
            ("work".to_owned(), 0),
            ("work".to_owned(), 1),
            ("work".to_owned(), 2),
            ("finish".to_owned(), 0)
        ]
    );

    // The journal holds each result.
    let entry = store
        .recorded_call(&run, "work", Visit::FIRST, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.tool, "mix");
    assert_eq!(entry.result, JournalResult::Output(mix(11).into()));
}

#[tokio::test]
async fn a_journaled_output_that_no_longer_decodes_is_a_typed_error_not_a_new_call() {
    let (service, origin) = KeyedService::start().await;
    let db = TempDb::new();
    let store = db.open();
    let run = RunId::from("r1");
    // A journal written by code whose `mix` returned text.
    store
        .record_call(flow_runtime::store::JournalEntry::new(
            run.clone(),
            "work",
            Visit::FIRST,
            0,
            "mix",
            1,
            JournalResult::Output("forty-two".into()),
        ))
        .await
        .unwrap();
    let err = journaled::Workflow::run(&ctx(&store, &origin, false), 10)
        .await
        .unwrap_err();
    let text = flow_tests::error_chain(&err);
    assert!(
        text.contains("no longer decodes as the tool's output type"),
        "{text}"
    );
    assert!(service.counts().is_empty(), "the call was not made again");
}

/// A conversation of `turns` model calls in one step, each request holding the whole
/// conversation so far; the step's output is the transcript's size in bytes (user messages and
/// the model's answers).
#[workflow]
pub mod conversation {
    use super::*;
    use flow_runtime::model::{ChatRequest, Message, OpenAiChat};

    #[step(entry, exit, tools = [OpenAiChat])]
    pub async fn chat(ctx: &Ctx<(), tools::Chat>, turns: u32) -> Result<usize, CallError> {
        let mut request = ChatRequest::new();
        let mut transcript = 0;
        for turn in 0..turns {
            let user = format!("Turn {turn}: tell me the next part of the story, please.");
            transcript += user.len();
            request = request.user(user);
            let answer = ctx.call::<OpenAiChat>(request.clone()).await?;
            let text = answer.content.unwrap_or_default();
            transcript += text.len();
            request = request.message(Message::assistant(text));
        }
        Ok(transcript)
    }
}

#[tokio::test]
async fn a_100_turn_conversation_is_stored_once_linear_in_its_transcript() {
    use flow_runtime::model::OpenAiChat;
    use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
    const TURNS: u32 = 100;
    let replies = (0..TURNS).map(|t| {
        Reply::text(format!(
            "Part {t}. The ship left the harbour at dawn, and the crew watched the lighthouse \
             fade behind them while the navigator checked the stars against her charts; nobody \
             spoke until the coast was gone."
        ))
    });
    let server = ScriptedModel::start(Script::new(replies)).await.unwrap();
    let db = TempDb::new();
    let store = db.open();
    let model = OpenAiChat::new(&server.openai_url(), "scripted").unwrap();
    let ctx = Ctx::builder(())
        .run_id("chat")
        .store(Arc::clone(&store))
        .tools(Toolbox::new().with(PolicyTool::new(model, ToolPolicy::default())))
        .build();
    let transcript = conversation::Workflow::run(&ctx, TURNS).await.unwrap();

    // What the store keeps of the run: the journal's answers and the latest state.
    let run = RunId::from("chat");
    let mut stored = 0;
    for position in 0..TURNS {
        let entry = store
            .recorded_call(&run, "chat", Visit::FIRST, position)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("turn {position} is journaled"));
        stored += entry.result_bytes();
    }
    let latest = store.latest(&run).await.unwrap().unwrap();
    stored += latest.state.to_string().len();
    // The requests, each holding the conversation so far, add up to ~TURNS/2 transcripts: a
    // store that kept them (or a state holding the transcript at every step) would grow
    // quadratically.
    let requests: usize = server
        .requests()
        .iter()
        .map(|r| r.body.to_string().len())
        .sum();
    eprintln!(
        "{TURNS} turns: transcript {transcript} B, stored {stored} B ({:.2}×), requests sent {requests} B",
        stored as f64 / transcript as f64
    );
    assert!(
        stored <= 2 * transcript,
        "stored {stored} bytes for a transcript of {transcript}: more than 2×"
    );
    assert!(
        requests > 20 * transcript,
        "the requests do hold the conversation"
    );
}

#[tokio::test]
async fn a_journaled_permanent_failure_fails_the_same_way_without_a_new_call() {
    let (service, origin) = KeyedService::start().await;
    let db = TempDb::new();
    let store = db.open();
    let run = RunId::from("r1");
    store
        .record_call(flow_runtime::store::JournalEntry::new(
            run.clone(),
            "work",
            Visit::FIRST,
            0,
            "mix",
            1,
            JournalResult::Failed("card declined".into()),
        ))
        .await
        .unwrap();
    let ctx = ctx(&store, &origin, false);
    let err = journaled::Workflow::run(&ctx, 10).await.unwrap_err();
    let text = flow_tests::error_chain(&err);
    assert!(
        text.contains("permanent error") && text.contains("card declined"),
        "{text}"
    );
    assert!(service.counts().is_empty(), "the call was not made again");
    let calls = ctx.calls();
    assert_eq!(
        calls.len(),
        1,
        "the replayed failure is in the history once"
    );
    assert_eq!(
        calls[0].outcome,
        flow_runtime::state::CallOutcome::Failed("card declined".into())
    );
}
