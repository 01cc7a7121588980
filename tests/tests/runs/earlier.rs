//! Earlier outputs (`#[from(x)] name: &T`): a step reads the output of a step that ran before
//! it on every path, in `run`, in `resume` from every stored state, and in the typestate API;
//! a stored state carries such an output only while a later step still reads it, so a loop
//! does not make it grow.

use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("earlier-outputs test step failed")]
pub struct Never;

/// Which steps ran, in order.
#[derive(Debug, Default)]
pub struct Runs(Mutex<Vec<&'static str>>);

impl Runs {
    fn ran(&self, step: &'static str) {
        self.0.lock().unwrap().push(step);
    }

    fn log(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    pub to: String,
    pub seats: u32,
}

/// `book` needs the validated trip and the offer chosen two steps later.
#[workflow(deps = Runs)]
pub mod travel {
    use super::*;

    #[step(entry)]
    pub async fn validate(ctx: &Ctx<Runs>, to: String) -> Result<Trip, Never> {
        ctx.deps().ran("validate");
        Ok(Trip { to, seats: 2 })
    }

    #[step(after = validate)]
    pub async fn search(ctx: &Ctx<Runs>, trip: Trip) -> Result<Vec<u32>, Never> {
        ctx.deps().ran("search");
        Ok(vec![310, 120 * trip.seats, 290])
    }

    #[step(after = search)]
    pub async fn choose(ctx: &Ctx<Runs>, offers: Vec<u32>) -> Result<usize, Never> {
        ctx.deps().ran("choose");
        Ok(offers
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| **p)
            .map_or(0, |(i, _)| i))
    }

    #[step(after = choose, exit)]
    pub async fn book(
        ctx: &Ctx<Runs>,
        offer: usize,
        #[from(validate)] trip: &Trip,
        #[from(search)] offers: &[u32],
    ) -> Result<String, Never> {
        ctx.deps().ran("book");
        Ok(format!(
            "{} seats to {} at {}",
            trip.seats, trip.to, offers[offer]
        ))
    }
}

/// A fan-out whose join reads the fan-out step's output, and a step after the join that reads
/// a branch's and the entry's.
#[workflow(deps = Runs)]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Runs>, question: String) -> Result<String, Never> {
        ctx.deps().ran("plan");
        Ok(question.to_lowercase())
    }

    #[step(after = plan)]
    pub async fn split(ctx: &Ctx<Runs>, question: String) -> Result<Vec<String>, Never> {
        ctx.deps().ran("split");
        Ok(question.split_whitespace().map(str::to_owned).collect())
    }

    #[step(after = split)]
    pub async fn web(
        ctx: &Ctx<Runs>,
        terms: Vec<String>,
        #[from(plan)] question: &str,
    ) -> Result<usize, Never> {
        ctx.deps().ran("web");
        Ok(terms.len() + question.len())
    }

    #[step(after = split)]
    pub async fn papers(ctx: &Ctx<Runs>, terms: Vec<String>) -> Result<String, Never> {
        ctx.deps().ran("papers");
        Ok(terms.join("+"))
    }

    #[step(after = [web, papers])]
    pub async fn merge(
        ctx: &Ctx<Runs>,
        web: usize,
        papers: String,
        #[from(split)] terms: &[String],
    ) -> Result<String, Never> {
        ctx.deps().ran("merge");
        Ok(format!("{web} hits, {papers}, {} terms", terms.len()))
    }

    #[step(after = merge, exit)]
    pub async fn report(
        ctx: &Ctx<Runs>,
        merged: String,
        #[from(web)] web: &usize,
        #[from(plan)] question: &str,
    ) -> Result<String, Never> {
        ctx.deps().ran("report");
        Ok(format!("{question}: {merged} (web {web})"))
    }
}

/// A loop whose body reads the brief: every visit's state carries it once.
#[workflow(deps = Runs)]
pub mod writer {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Verdict {
        #[to(draft, max = 5, exhausted = give_up)]
        Revise(String),
        Publish(String),
    }

    #[step(entry)]
    pub async fn brief(ctx: &Ctx<Runs>, topic: String) -> Result<String, Never> {
        ctx.deps().ran("brief");
        Ok(format!("about {topic}"))
    }

    /// Each draft adds a `!` to the last one (the brief, the first time).
    #[step(after = brief)]
    pub async fn draft(
        ctx: &Ctx<Runs>,
        text: String,
        #[from(brief)] brief: &str,
    ) -> Result<String, Never> {
        ctx.deps().ran("draft");
        assert!(text.starts_with(brief));
        Ok(format!("{text}!"))
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(
        ctx: &Ctx<Runs>,
        text: String,
        #[from(brief)] brief: &str,
    ) -> Result<Verdict, Never> {
        ctx.deps().ran("review");
        Ok(if text.len() < brief.len() + 3 {
            Verdict::Revise(text)
        } else {
            Verdict::Publish(text)
        })
    }

    #[step(after = review, exit)]
    pub async fn publish(
        ctx: &Ctx<Runs>,
        text: String,
        #[from(brief)] brief: &str,
    ) -> Result<String, Never> {
        ctx.deps().ran("publish");
        Ok(format!("{text} (brief: {brief})"))
    }

    #[step(after = review, exit)]
    pub async fn give_up(ctx: &Ctx<Runs>, last: LoopExhausted<String>) -> Result<String, Never> {
        ctx.deps().ran("give_up");
        Ok(format!("gave up at {}", last.last))
    }
}

fn ctx_with(store: &Arc<MemoryStore>) -> Ctx<Runs> {
    Ctx::builder(Runs::default())
        .store(Arc::clone(store))
        .run_id("e1")
        .build()
}

/// Runs `input` through `W` uninterrupted, then resumes from the start state and from every
/// stored state with a fresh store: the same output, the same remaining checkpoints, only the
/// remaining steps. Returns the uninterrupted run's checkpoints.
async fn resume_from_every_state<W>(input: W::Input) -> Vec<Checkpoint>
where
    W: Workflow<Deps = Runs>,
    W::Input: Clone,
    W::Output: PartialEq + Debug,
    W::Error: Debug,
    W::State: Debug,
{
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(&store);
    let expected = W::run(&ctx, input.clone()).await.unwrap();
    let full_log = ctx.deps().log();
    let history = store.history(&RunId::from("e1"));
    // `run` stored the run's start first: the entry step's state, before any step ran.
    let start = serde_json::to_value(W::start(input.clone())).unwrap();
    assert!(
        history
            .first()
            .is_some_and(|c| c.step.is_empty() && c.state == start),
        "the run's start was not stored first: {history:?}"
    );
    let history = history[1..].to_vec();
    assert!(history.last().is_some_and(|c| c.finished), "{history:?}");
    let states = std::iter::once(W::start(input)).chain(
        history
            .iter()
            .map(|c| serde_json::from_value::<W::State>(c.state.clone()).unwrap()),
    );
    for (k, state) in states.enumerate() {
        let at = format!("{state:?}");
        let fresh = Arc::new(MemoryStore::new());
        let ctx = ctx_with(&fresh);
        let out = W::resume(&ctx, state).await.unwrap();
        assert_eq!(out, expected, "resumed from {at} (state {k})");
        assert_eq!(
            fresh.history(&RunId::from("e1")),
            history[k..],
            "checkpoints after {at}"
        );
        let log = ctx.deps().log();
        assert!(
            full_log.ends_with(&log),
            "resumed from {at}, ran {log:?}; uninterrupted: {full_log:?}"
        );
    }
    history
}

/// Each checkpoint as (its step, the fields of its stored state).
fn shapes(history: &[Checkpoint]) -> Vec<(String, BTreeSet<String>)> {
    history
        .iter()
        .map(|c| {
            let fields = c
                .state
                .as_object()
                .and_then(|v| v.values().next())
                .and_then(|v| v.as_object())
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            (c.step.clone(), fields)
        })
        .collect()
}

fn set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

#[tokio::test]
async fn a_step_reads_outputs_from_two_and_three_steps_back() {
    let history = resume_from_every_state::<travel::Workflow>("Lisbon".into()).await;
    let last = history.last().unwrap();
    assert_eq!(
        last.state["Completed"]["output"],
        "2 seats to Lisbon at 240"
    );
    // `validate`'s output is carried from the state after it until `book`; `search`'s from
    // the state after it.
    assert_eq!(
        shapes(&history),
        [
            ("validate".to_owned(), set(&["input", "validate", "loops"])),
            (
                "search".to_owned(),
                set(&["input", "validate", "search", "loops"])
            ),
            (
                "choose".to_owned(),
                set(&["input", "validate", "search", "loops"])
            ),
            ("book".to_owned(), set(&["output"])),
        ]
    );
}

#[tokio::test]
async fn joins_and_branches_read_earlier_outputs_and_resume_mid_fan_out() {
    let history = resume_from_every_state::<research::Workflow>("Grid Storage".into()).await;
    let out = &history.last().unwrap().state["Completed"]["output"];
    assert_eq!(out, "grid storage: 14 hits, grid+storage, 2 terms (web 14)");
    let steps: Vec<&str> = history.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps.len(), 6, "{steps:?}");
    // Inside the fan-out the join's state carries the entry's output (read by `web` and by
    // `report`) and the fan-out step's (read by the join).
    let (_, inside) = &shapes(&history)[2];
    assert!(
        inside.is_superset(&set(&["plan", "split", "web", "papers"])),
        "{inside:?}"
    );
}

#[tokio::test]
async fn a_loop_carries_an_earlier_output_once_per_state() {
    let history = resume_from_every_state::<writer::Workflow>("tides".into()).await;
    assert_eq!(
        history.last().unwrap().state["Completed"]["output"],
        "about tides!!! (brief: about tides)"
    );
    let shapes = shapes(&history);
    let drafts: Vec<_> = shapes.iter().filter(|(step, _)| step == "review").collect();
    assert_eq!(drafts.len(), 3, "{shapes:?}");
    // Every visit stores the same fields: the brief once, whatever the number of turns.
    for (_, fields) in &shapes[..shapes.len() - 1] {
        assert!(fields == &set(&["input", "brief", "loops"]), "{shapes:?}");
    }
}

#[tokio::test]
async fn the_typestate_api_hands_earlier_outputs_on() {
    let ctx = Ctx::new(Runs::default());
    let flow = travel::Flow::new(&ctx, "Oslo".to_owned());
    let flow = flow.validate().await.unwrap().search().await.unwrap();
    let flow = flow.choose().await.unwrap();
    let state = serde_json::to_value(flow.into_state()).unwrap();
    assert_eq!(state["Book"]["validate"]["to"], "Oslo");
    assert_eq!(state["Book"]["input"], 1);

    // Another run, so another context.
    let flow = travel::Flow::new(&Ctx::new(Runs::default()), "Oslo".to_owned());
    let flow = flow.validate().await.unwrap().search().await.unwrap();
    let booked = flow.choose().await.unwrap().book().await.unwrap();
    assert_eq!(booked, "2 seats to Oslo at 240");

    let flow = research::Flow::new(&Ctx::new(Runs::default()), "A B".to_owned());
    let flow = flow.plan().await.unwrap().split().await.unwrap();
    let flow = flow.papers().await.unwrap().web().await.unwrap();
    let out = flow.merge().await.unwrap().report().await.unwrap();
    assert_eq!(out, "a b: 5 hits, a+b, 2 terms (web 5)");
}
