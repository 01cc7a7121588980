//! Idempotency keys identify the call, also inside loops and `workers` steps: the run, the
//! step, the step's visit (a loop's turn, a worker's item) and the call's position within it.
//! The same call gets the same key when its visit runs again (a resumed run, a re-run under
//! the same run id); every other call gets another, so a service that honours the key never
//! replays one turn's answer on the next. The run's history records each call's visit, so a
//! recorded call gives back the key its tool or sink received.

use flow_runtime::output::{ChannelSink, Outputs};
use flow_runtime::prelude::*;
use flow_runtime::state::{CallKind, CallRecord, LoopExhausted, RunId};
use flow_runtime::store::{MemoryStore, SqliteStore};
use flow_runtime::tool::{Toolbox, Visit};
use flow_tests::store::TempDb;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One call a tool saw: (tool, input, idempotency key).
type Call = (&'static str, String, String);

/// What the tools saw, in call order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Call>>>);

impl Seen {
    fn push(&self, tool: &'static str, ctx: &ToolCtx, input: &str) {
        self.0
            .lock()
            .unwrap()
            .push((tool, input.to_owned(), ctx.idempotency_key().to_string()));
    }

    fn all(&self) -> Vec<Call> {
        self.0.lock().unwrap().clone()
    }

    fn keys(&self) -> Vec<String> {
        self.all().into_iter().map(|(_, _, key)| key).collect()
    }
}

/// A model: answers with its input.
pub struct Model(Seen);

impl Tool for Model {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "model";
    const DESCRIPTION: &'static str = "Thinks.";

    async fn call(&self, ctx: &ToolCtx, input: String) -> Result<String, ToolError> {
        self.0.push(Self::NAME, ctx, &input);
        Ok(input)
    }
}

/// Looks something up.
pub struct Lookup(Seen);

impl Tool for Lookup {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "lookup";
    const DESCRIPTION: &'static str = "Looks up.";

    async fn call(&self, ctx: &ToolCtx, input: String) -> Result<String, ToolError> {
        self.0.push(Self::NAME, ctx, &input);
        Ok(input)
    }
}

/// Writes something down.
pub struct Note(Seen);

impl Tool for Note {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "note";
    const DESCRIPTION: &'static str = "Takes a note.";

    async fn call(&self, ctx: &ToolCtx, input: String) -> Result<String, ToolError> {
        self.0.push(Self::NAME, ctx, &input);
        Ok(input)
    }
}

/// think → act → back to think, three turns: `think` asks the model twice per turn, `act`
/// calls a different tool on each turn.
#[workflow]
pub mod agent {
    use super::*;

    pub enum Next {
        #[to(think, max = 5, exhausted = give_up)]
        Again(u32),
        #[to(answer)]
        Answer(u32),
    }

    #[step(entry)]
    pub async fn start(turn: u32) -> Result<u32, CallError> {
        Ok(turn)
    }

    #[step(after = start, tools = [Model])]
    pub async fn think(ctx: &Ctx<(), tools::Think>, turn: u32) -> Result<u32, CallError> {
        ctx.call::<Model>(format!("plan {turn}")).await?;
        ctx.call::<Model>(format!("check {turn}")).await?;
        Ok(turn)
    }

    #[step(after = think, routes = Next, tools = [Lookup, Note])]
    pub async fn act(ctx: &Ctx<(), tools::Act>, turn: u32) -> Result<Next, CallError> {
        if turn.is_multiple_of(2) {
            ctx.call::<Lookup>(format!("turn {turn}")).await?;
        } else {
            ctx.call::<Note>(format!("turn {turn}")).await?;
        }
        Ok(if turn < 2 {
            Next::Again(turn + 1)
        } else {
            Next::Answer(turn)
        })
    }

    #[step(after = act, exit)]
    pub async fn answer(turn: u32) -> Result<u32, CallError> {
        Ok(turn)
    }

    #[step(after = act, exit)]
    pub async fn give_up(spent: LoopExhausted<u32>) -> Result<u32, CallError> {
        Ok(spent.last)
    }
}

/// The same loop with an unbounded back-edge: keys must differ per turn there too.
#[workflow]
pub mod poll {
    use super::*;

    pub enum Status {
        #[to(ask)]
        Pending(u32),
        #[to(done)]
        Ready(u32),
    }

    #[step(entry, tools = [Model])]
    pub async fn ask(ctx: &Ctx<(), tools::Ask>, turn: u32) -> Result<u32, CallError> {
        ctx.call::<Model>("status?".to_owned()).await?;
        Ok(turn)
    }

    #[step(after = ask, routes = Status)]
    pub async fn judge(turn: u32) -> Result<Status, CallError> {
        Ok(if turn < 3 {
            Status::Pending(turn + 1)
        } else {
            Status::Ready(turn)
        })
    }

    #[step(after = judge, exit)]
    pub async fn done(turn: u32) -> Result<u32, CallError> {
        Ok(turn)
    }
}

/// How long each item of the `workers` step takes, by item: the order items finish in.
#[derive(Clone)]
pub struct Delays(Vec<u64>);

/// A `workers` step whose items each ask the model twice.
#[workflow(deps = Delays)]
pub mod batch {
    use super::*;

    #[step(entry)]
    pub async fn split(n: u32) -> Result<Vec<u32>, CallError> {
        Ok((0..n).collect())
    }

    #[step(after = split, workers = 4, tools = [Model])]
    pub async fn each(ctx: &Ctx<Delays, tools::Each>, item: u32) -> Result<u32, CallError> {
        let delay = ctx.deps().0[item as usize];
        tokio::time::sleep(Duration::from_millis(delay)).await;
        ctx.call::<Model>(format!("item {item} first")).await?;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        ctx.call::<Model>(format!("item {item} second")).await?;
        Ok(item)
    }

    #[step(after = each, exit)]
    pub async fn total(items: Vec<u32>) -> Result<u32, CallError> {
        Ok(items.iter().sum())
    }
}

fn toolbox(seen: &Seen) -> Toolbox {
    Toolbox::new()
        .with(PolicyTool::new(Model(seen.clone()), ToolPolicy::default()))
        .with(PolicyTool::new(Lookup(seen.clone()), ToolPolicy::default()))
        .with(PolicyTool::new(Note(seen.clone()), ToolPolicy::default()))
}

fn distinct(keys: &[String]) -> bool {
    keys.iter().collect::<HashSet<_>>().len() == keys.len()
}

fn key(run: &RunId, step: &str, visit: Visit, call: u32) -> String {
    IdempotencyKey::new(run, step, visit, call).to_string()
}

#[tokio::test]
async fn every_call_of_a_loop_has_its_own_key() {
    let seen = Seen::default();
    let ctx = Ctx::builder(())
        .run_id("loop-keys")
        .tools(toolbox(&seen))
        .build();
    assert_eq!(agent::Workflow::run(&ctx, 0).await.unwrap(), 2);

    let calls = seen.all();
    let tools: Vec<_> = calls
        .iter()
        .map(|(tool, input, _)| (*tool, input.as_str()))
        .collect();
    assert_eq!(
        tools,
        [
            ("model", "plan 0"),
            ("model", "check 0"),
            ("lookup", "turn 0"),
            ("model", "plan 1"),
            ("model", "check 1"),
            ("note", "turn 1"),
            ("model", "plan 2"),
            ("model", "check 2"),
            ("lookup", "turn 2"),
        ]
    );
    // Three turns of two model calls, and the two different tools of `act`: nine keys.
    let keys = seen.keys();
    assert!(distinct(&keys), "{keys:#?}");

    // Turn `t` of the loop is the step's visit after `t` back-edges.
    let run = RunId::from("loop-keys");
    for turn in 0..3u32 {
        let visit = Visit::after(u64::from(turn));
        let at = 3 * turn as usize;
        assert_eq!(keys[at], key(&run, "think", visit, 0));
        assert_eq!(keys[at + 1], key(&run, "think", visit, 1));
        assert_eq!(keys[at + 2], key(&run, "act", visit, 0));
    }
}

#[tokio::test]
async fn an_unbounded_loop_gives_each_turn_its_own_keys() {
    let seen = Seen::default();
    let ctx = Ctx::builder(())
        .run_id("poll-keys")
        .tools(toolbox(&seen))
        .build();
    assert_eq!(poll::Workflow::run(&ctx, 0).await.unwrap(), 3);

    let keys = seen.keys();
    assert_eq!(keys.len(), 4);
    assert!(distinct(&keys), "{keys:#?}");
}

#[tokio::test]
async fn the_same_run_id_run_again_sends_the_same_keys() {
    let first = Seen::default();
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(())
        .run_id("rerun")
        .store(Arc::clone(&store))
        .tools(toolbox(&first))
        .build();
    agent::Workflow::run(&ctx, 0).await.unwrap();

    // The same run from scratch, in a fresh store: the same calls, the same keys.
    let again = Seen::default();
    let ctx = Ctx::builder(())
        .run_id("rerun")
        .store(Arc::new(MemoryStore::new()))
        .tools(toolbox(&again))
        .build();
    agent::Workflow::run(&ctx, 0).await.unwrap();
    assert_eq!(again.all(), first.all());
}

#[tokio::test]
async fn a_loop_resumed_from_a_checkpoint_repeats_the_keys_of_the_visits_it_runs_again() {
    let first = Seen::default();
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(())
        .run_id("resumed")
        .store(Arc::clone(&store))
        .tools(toolbox(&first))
        .build();
    agent::Workflow::run(&ctx, 0).await.unwrap();

    // Stored after `act`'s first turn: `think` runs next, on the loop's second turn.
    let history = store.history(&RunId::from("resumed"));
    let after_act = history
        .iter()
        .find(|c| c.step == "act")
        .expect("a checkpoint after `act`");
    let state: agent::FlowState = serde_json::from_value(after_act.state.clone()).unwrap();
    assert_eq!(state.step(), Some("think"));

    // As if the process had died there: a new context resumes the stored state.
    let again = Seen::default();
    let ctx = Ctx::builder(())
        .run_id("resumed")
        .tools(toolbox(&again))
        .build();
    agent::Workflow::resume(&ctx, state).await.unwrap();
    // The turns it ran again are the last two: the same calls with the same keys.
    assert_eq!(again.all(), first.all()[3..]);
}

#[tokio::test(start_paused = true)]
async fn workers_items_have_their_own_keys_whatever_order_they_finish_in() {
    let run = RunId::from("batch-keys");
    let by_input = |delays: Vec<u64>| async move {
        let seen = Seen::default();
        let ctx = Ctx::builder(Delays(delays))
            .run_id("batch-keys")
            .tools(toolbox(&seen))
            .build();
        batch::Workflow::run(&ctx, 4).await.unwrap();
        let order: Vec<_> = seen.all().into_iter().map(|(_, input, _)| input).collect();
        let keys: HashMap<_, _> = seen
            .all()
            .into_iter()
            .map(|(_, input, key)| (input, key))
            .collect();
        (order, keys)
    };

    // Item 0 finishes first, then item 1…; then the other way round.
    let (order, keys) = by_input(vec![10, 20, 30, 40]).await;
    let (reversed, keys_reversed) = by_input(vec![40, 30, 20, 10]).await;
    assert_eq!(order[0], "item 0 first");
    assert_eq!(reversed[0], "item 3 first");

    // Eight calls, eight keys; each call keeps its key whatever the completion order.
    let all: Vec<String> = keys.values().cloned().collect();
    assert_eq!(all.len(), 8);
    assert!(distinct(&all), "{all:#?}");
    assert_eq!(keys, keys_reversed);
    for item in 0..4u32 {
        let visit = Visit::FIRST.item(item);
        assert_eq!(
            keys[&format!("item {item} first")],
            key(&run, "each", visit, 0)
        );
        assert_eq!(
            keys[&format!("item {item} second")],
            key(&run, "each", visit, 1)
        );
    }
}

#[tokio::test]
async fn deliveries_of_a_looping_step_have_a_key_per_visit() {
    let deliveries = |run_id: &'static str| async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let seen = Seen::default();
        let ctx = Ctx::builder(())
            .run_id(run_id)
            .tools(toolbox(&seen))
            .outputs(Outputs::new().on_step("think", ChannelSink::new(tx)))
            .build();
        agent::Workflow::run(&ctx, 0).await.unwrap();
        drop(ctx);
        let mut keys = Vec::new();
        while let Some(delivery) = rx.recv().await {
            keys.push(delivery.idempotency_key().to_string());
        }
        keys
    };
    let keys = deliveries("outputs").await;
    // One delivery per turn of `think`, each with its own key…
    assert_eq!(keys.len(), 3);
    assert!(distinct(&keys), "{keys:#?}");
    // …and the same ones when the run runs again.
    assert_eq!(deliveries("outputs").await, keys);
}

#[tokio::test]
async fn a_state_stored_before_unbounded_loops_were_counted_still_resumes() {
    // Written when `Loops` had no counter for the unbounded `judge_pending`: it starts at 0.
    let stored = serde_json::json!({ "Ask": { "input": 2, "loops": {} } });
    let state: poll::FlowState = serde_json::from_value(stored).unwrap();
    assert_eq!(state.loops().unwrap().judge_pending, 0);

    let seen = Seen::default();
    let ctx = Ctx::builder(()).tools(toolbox(&seen)).build();
    assert_eq!(poll::Workflow::resume(&ctx, state).await.unwrap(), 3);
    assert_eq!(seen.keys().len(), 2);
    assert!(distinct(&seen.keys()));
}

// --- The history gives every call its key ----------------------------------------------------

/// The keys `records` had in run `run`: tool calls, then output deliveries.
fn recorded_keys(run: &RunId, records: &[CallRecord]) -> (Vec<String>, Vec<String>) {
    let keys = |kind| {
        records
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.idempotency_key(run).to_string())
            .collect::<Vec<_>>()
    };
    (keys(CallKind::Tool), keys(CallKind::Output))
}

/// The loop of `agent` with a sink on `think`, stored in `store`: what the tools and the sink
/// received, and the run's calls.
async fn agent_run(
    run_id: &str,
    store: Arc<impl flow_runtime::store::Store>,
) -> (Vec<String>, Vec<String>, Vec<CallRecord>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let seen = Seen::default();
    let ctx = Ctx::builder(())
        .run_id(run_id)
        .store(store)
        .tools(toolbox(&seen))
        .outputs(Outputs::new().on_step("think", ChannelSink::new(tx)))
        .build();
    assert_eq!(agent::Workflow::run(&ctx, 0).await.unwrap(), 2);
    let calls = ctx.calls();
    drop(ctx);
    let mut delivered = Vec::new();
    while let Some(delivery) = rx.recv().await {
        delivered.push(delivery.idempotency_key().to_string());
    }
    (seen.keys(), delivered, calls)
}

/// Every call of the loop, as `ctx.calls()` and the store's history record it, gives back the
/// key its tool or sink received, and names its turn.
fn assert_loop_history(run: &RunId, seen: &[String], delivered: &[String], records: &[CallRecord]) {
    let (tools, outputs) = recorded_keys(run, records);
    assert_eq!(tools, seen);
    assert_eq!(outputs, delivered);
    let all: Vec<String> = tools.into_iter().chain(outputs).collect();
    assert_eq!(all.len(), 12, "nine tool calls, three deliveries");
    assert!(distinct(&all), "{all:#?}");

    let visits: Vec<_> = records
        .iter()
        .filter(|r| r.step == "think" && r.kind == CallKind::Tool)
        .map(|r| (r.visit, r.index))
        .collect();
    let expected: Vec<_> = (0..3)
        .flat_map(|turn| [(Visit::after(turn), 0), (Visit::after(turn), 1)])
        .collect();
    assert_eq!(visits, expected);
}

#[tokio::test]
async fn the_history_of_a_loop_gives_every_call_the_key_it_was_sent_with_memory() {
    let store = Arc::new(MemoryStore::new());
    let (seen, delivered, calls) = agent_run("history-memory", Arc::clone(&store)).await;
    let run = RunId::from("history-memory");
    assert_loop_history(&run, &seen, &delivered, &calls);
    let stored: Vec<CallRecord> = store
        .history(&run)
        .into_iter()
        .flat_map(|c| c.calls)
        .collect();
    assert_loop_history(&run, &seen, &delivered, &stored);
}

#[tokio::test]
async fn the_history_of_a_loop_gives_every_call_the_key_it_was_sent_with_sqlite() {
    let db = TempDb::new();
    let store = db.open();
    let (seen, delivered, calls) = agent_run("history-sqlite", Arc::clone(&store)).await;
    let run = RunId::from("history-sqlite");
    assert_loop_history(&run, &seen, &delivered, &calls);
    let stored: Vec<CallRecord> = store
        .history(&run)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|e| e.calls)
        .collect();
    assert_loop_history(&run, &seen, &delivered, &stored);
}

#[tokio::test(start_paused = true)]
async fn the_history_of_a_workers_step_gives_every_item_call_its_key() {
    let db = TempDb::new();
    let store = db.open();
    let seen = Seen::default();
    // The last item finishes first.
    let ctx = Ctx::builder(Delays(vec![40, 30, 20, 10]))
        .run_id("batch-history")
        .store(Arc::clone(&store))
        .tools(toolbox(&seen))
        .build();
    assert_eq!(batch::Workflow::run(&ctx, 4).await.unwrap(), 6);
    let run = RunId::from("batch-history");

    let mut sent = seen.keys();
    sent.sort();
    assert_eq!(sent.len(), 8);
    assert!(distinct(&sent), "{sent:#?}");
    let stored: Vec<CallRecord> = store
        .history(&run)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|e| e.calls)
        .collect();
    for records in [ctx.calls(), stored] {
        let (mut keys, outputs) = recorded_keys(&run, &records);
        assert!(outputs.is_empty());
        keys.sort();
        assert_eq!(keys, sent);
        // Each item's two calls, numbered within the item.
        let mut visits: Vec<_> = records
            .iter()
            .map(|r| (r.visit.item_index(), r.index))
            .collect();
        visits.sort_unstable();
        let expected: Vec<_> = (0..4)
            .flat_map(|item| [(Some(item), 0), (Some(item), 1)])
            .collect();
        assert_eq!(visits, expected);
    }
}

/// A file of schema 5, whose `calls` had no visit: its calls read back as first visits (the
/// keys of calls outside loops and `workers` steps, which is what they were), and new calls
/// are stored with theirs.
#[tokio::test]
async fn a_schema_5_file_is_upgraded_and_its_calls_read_back_as_first_visits() {
    let db = TempDb::new();
    let path = db.path();
    let raw = || rusqlite::Connection::open(path).unwrap();
    let history = async |store: &SqliteStore, run: &str| -> Vec<CallRecord> {
        store
            .history(&RunId::from(run))
            .await
            .unwrap()
            .into_iter()
            .flat_map(|e| e.calls)
            .collect()
    };
    let visits = |records: &[CallRecord]| -> Vec<(Visit, u32)> {
        records.iter().map(|r| (r.visit, r.index)).collect()
    };
    let turns: Vec<(Visit, u32)> = (0..4).map(|turn| (Visit::after(turn), 0)).collect();
    let poll = |store: &Arc<SqliteStore>, run: &'static str| {
        let ctx = Ctx::builder(())
            .run_id(run)
            .store(Arc::clone(store))
            .tools(toolbox(&Seen::default()))
            .build();
        async move { poll::Workflow::run(&ctx, 0).await.unwrap() }
    };
    {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        assert_eq!(poll(&store, "old").await, 3);
        assert_eq!(visits(&history(&store, "old").await), turns);
    }
    // Back to schema 5, as the store before visits wrote it.
    raw()
        .execute_batch(
            "DROP INDEX journal_by_seq; ALTER TABLE journal DROP COLUMN seq; ALTER TABLE history DROP COLUMN attempt; \
             ALTER TABLE history DROP COLUMN started_at; ALTER TABLE runs DROP COLUMN step_started_at; DROP TABLE workflows; \
             ALTER TABLE runs DROP COLUMN failed_step; ALTER TABLE history DROP COLUMN failed_step; \
             ALTER TABLE history DROP COLUMN failure; ALTER TABLE calls DROP COLUMN visit_back_edges; \
             ALTER TABLE calls DROP COLUMN visit_item; ALTER TABLE runs DROP COLUMN trace; ALTER TABLE runs DROP COLUMN lease_owner; ALTER TABLE runs DROP COLUMN lease_until; ALTER TABLE runs DROP COLUMN lease_epoch; \
             ALTER TABLE calls DROP COLUMN input_tokens; ALTER TABLE calls DROP COLUMN output_tokens; \
             PRAGMA user_version = 5;",
        )
        .unwrap();

    let store = Arc::new(SqliteStore::open(path).unwrap());
    let version: i64 = raw()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, flow_tests::store::SQLITE_SCHEMA);
    let old = history(&store, "old").await;
    assert_eq!(old.len(), 4);
    assert!(old.iter().all(|r| r.visit == Visit::FIRST && r.index == 0));

    assert_eq!(poll(&store, "new").await, 3);
    assert_eq!(visits(&history(&store, "new").await), turns);
    drop(store);
    // Opened again: nothing more to upgrade, nothing lost.
    let store = SqliteStore::open(path).unwrap();
    assert_eq!(visits(&history(&store, "new").await), turns);
}
