//! `resume` from every state a run stores, for every pattern: the output is the uninterrupted
//! run's, only the remaining steps run, and they store the same checkpoints the uninterrupted
//! run stored after that point. Also resuming from states made by the typestate API, including
//! a fan-out in which only one branch has run.

use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("resume test step failed")]
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

    fn count(&self, step: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == step)
            .count()
    }
}

#[workflow(deps = Runs)]
pub mod linear {
    use super::*;

    #[step(entry)]
    pub async fn parse(ctx: &Ctx<Runs>, s: String) -> Result<u32, Never> {
        ctx.deps().ran("parse");
        s.parse().map_err(|_| Never)
    }

    #[step(after = parse)]
    pub async fn double(ctx: &Ctx<Runs>, n: u32) -> Result<u64, Never> {
        ctx.deps().ran("double");
        Ok(u64::from(n) * 2)
    }

    #[step(after = double, exit)]
    pub async fn show(ctx: &Ctx<Runs>, n: u64) -> Result<String, Never> {
        ctx.deps().ran("show");
        Ok(format!("<{n}>"))
    }
}

#[workflow(deps = Runs)]
pub mod routing {
    use super::*;

    pub enum Kind {
        Number(i64),
        #[to(word)]
        Text(String),
    }

    #[step(entry, routes = Kind)]
    pub async fn classify(ctx: &Ctx<Runs>, s: String) -> Result<Kind, Never> {
        ctx.deps().ran("classify");
        Ok(s.parse().map_or(Kind::Text(s), Kind::Number))
    }

    #[step(after = classify)]
    pub async fn number(ctx: &Ctx<Runs>, n: i64) -> Result<i64, Never> {
        ctx.deps().ran("number");
        Ok(n * n)
    }

    #[step(after = number, exit)]
    pub async fn squared(ctx: &Ctx<Runs>, n: i64) -> Result<String, Never> {
        ctx.deps().ran("squared");
        Ok(format!("squared {n}"))
    }

    #[step(after = classify, exit)]
    pub async fn word(ctx: &Ctx<Runs>, s: String) -> Result<String, Never> {
        ctx.deps().ran("word");
        Ok(format!("word {}", s.to_uppercase()))
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Topic {
    pub name: String,
}

#[workflow(deps = Runs)]
pub mod fan {
    use super::*;

    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Runs>, name: String) -> Result<Topic, Never> {
        ctx.deps().ran("plan");
        Ok(Topic { name })
    }

    #[step(after = plan)]
    pub async fn web(ctx: &Ctx<Runs>, topic: Topic) -> Result<String, Never> {
        ctx.deps().ran("web");
        Ok(format!("web:{}", topic.name))
    }

    #[step(after = plan)]
    pub async fn papers(ctx: &Ctx<Runs>, topic: Topic) -> Result<usize, Never> {
        ctx.deps().ran("papers");
        Ok(topic.name.len())
    }

    #[step(after = plan)]
    pub async fn people(ctx: &Ctx<Runs>, topic: Topic) -> Result<Vec<String>, Never> {
        ctx.deps().ran("people");
        Ok(vec![format!("expert on {}", topic.name)])
    }

    #[step(after = [web, papers, people])]
    pub async fn summarize(
        ctx: &Ctx<Runs>,
        web: String,
        papers: usize,
        people: Vec<String>,
    ) -> Result<String, Never> {
        ctx.deps().ran("summarize");
        Ok(format!("{web} / {papers} / {}", people.join(",")))
    }

    #[step(after = summarize, exit)]
    pub async fn publish(ctx: &Ctx<Runs>, s: String) -> Result<String, Never> {
        ctx.deps().ran("publish");
        Ok(format!("[{s}]"))
    }
}

#[workflow(deps = Runs)]
pub mod workers {
    use super::*;

    #[step(entry)]
    pub async fn split(ctx: &Ctx<Runs>, s: String) -> Result<Vec<String>, Never> {
        ctx.deps().ran("split");
        Ok(s.split(' ').map(str::to_owned).collect())
    }

    #[step(after = split, workers = 2)]
    pub async fn measure(ctx: &Ctx<Runs>, word: String) -> Result<usize, Never> {
        ctx.deps().ran("measure");
        tokio::task::yield_now().await;
        Ok(word.len())
    }

    #[step(after = measure, exit)]
    pub async fn total(ctx: &Ctx<Runs>, lens: Vec<usize>) -> Result<(usize, Vec<usize>), Never> {
        ctx.deps().ran("total");
        Ok((lens.iter().sum(), lens))
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub version: u32,
    pub accept_at: u32,
}

#[workflow(deps = Runs)]
pub mod looping {
    use super::*;

    pub enum Verdict {
        #[to(draft, max = 2, exhausted = give_up)]
        Revise(Draft),
        Publish(Draft),
    }

    #[step(entry)]
    pub async fn brief(ctx: &Ctx<Runs>, accept_at: u32) -> Result<Draft, Never> {
        ctx.deps().ran("brief");
        Ok(Draft {
            version: 0,
            accept_at,
        })
    }

    #[step(after = brief)]
    pub async fn draft(ctx: &Ctx<Runs>, d: Draft) -> Result<Draft, Never> {
        ctx.deps().ran("draft");
        Ok(Draft {
            version: d.version + 1,
            ..d
        })
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(ctx: &Ctx<Runs>, d: Draft) -> Result<Verdict, Never> {
        ctx.deps().ran("review");
        Ok(if d.version >= d.accept_at {
            Verdict::Publish(d)
        } else {
            Verdict::Revise(d)
        })
    }

    #[step(after = review, exit)]
    pub async fn publish(ctx: &Ctx<Runs>, d: Draft) -> Result<String, Never> {
        ctx.deps().ran("publish");
        Ok(format!("v{}", d.version))
    }

    #[step(after = review, exit)]
    pub async fn give_up(ctx: &Ctx<Runs>, e: LoopExhausted<Draft>) -> Result<String, Never> {
        ctx.deps().ran("give_up");
        Ok(format!(
            "gave up after {} at v{}",
            e.iterations, e.last.version
        ))
    }
}

fn ctx_with(store: &Arc<MemoryStore>) -> Ctx<Runs> {
    Ctx::builder(Runs::default())
        .store(Arc::clone(store))
        .run_id("r1")
        .build()
}

fn run_id() -> RunId {
    RunId::from("r1")
}

/// Runs `input` through `W` uninterrupted, then resumes from the start state and from every
/// stored state with a fresh store, and checks each resumed run against the uninterrupted one.
/// Returns the uninterrupted run's checkpoints.
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
    let history = store.history(&run_id());
    // `run` stored the run's start first: the entry step's state, before any step ran.
    let start = serde_json::to_value(W::start(input.clone())).unwrap();
    assert!(
        history
            .first()
            .is_some_and(|c| c.step.is_empty() && c.state == start),
        "the run's start was not stored first: {history:?}"
    );
    let history = history[1..].to_vec();
    assert!(
        history.last().is_some_and(|c| c.finished),
        "the run did not finish: {history:?}"
    );

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
            fresh.history(&run_id()),
            history[k..],
            "checkpoints after resuming from {at} (state {k})"
        );
        let log = ctx.deps().log();
        assert!(
            full_log.ends_with(&log),
            "resumed from {at} (state {k}), these steps ran: {log:?}; uninterrupted: {full_log:?}"
        );
        if k == history.len() {
            assert!(log.is_empty(), "resuming a completed run ran {log:?}");
        }
    }
    history
}

fn steps(history: &[Checkpoint]) -> Vec<&str> {
    history.iter().map(|c| c.step.as_str()).collect()
}

#[tokio::test]
async fn linear_resumes_from_every_state() {
    let history = resume_from_every_state::<linear::Workflow>("21".into()).await;
    assert_eq!(steps(&history), ["parse", "double", "show"]);
}

#[tokio::test]
async fn routing_resumes_from_every_state_on_each_route() {
    let history = resume_from_every_state::<routing::Workflow>("-3".into()).await;
    assert_eq!(steps(&history), ["classify", "number", "squared"]);
    let history = resume_from_every_state::<routing::Workflow>("abc".into()).await;
    assert_eq!(steps(&history), ["classify", "word"]);
}

#[tokio::test]
async fn fan_out_resumes_from_every_state_including_half_done_fan_outs() {
    let history = resume_from_every_state::<fan::Workflow>("rust".into()).await;
    let steps = steps(&history);
    assert_eq!(steps.len(), 6, "{steps:?}");
    assert_eq!(steps[0], "plan");
    let mut branches = steps[1..4].to_vec();
    branches.sort_unstable();
    assert_eq!(branches, ["papers", "people", "web"]);
    assert_eq!(steps[4..], ["summarize", "publish"]);
}

#[tokio::test]
async fn workers_resume_from_every_state() {
    let history = resume_from_every_state::<workers::Workflow>("a bb ccc dddd e".into()).await;
    assert_eq!(steps(&history), ["split", "measure", "total"]);
}

#[tokio::test]
async fn an_exhausted_loop_resumes_from_every_state() {
    let history = resume_from_every_state::<looping::Workflow>(u32::MAX).await;
    assert_eq!(
        steps(&history),
        [
            "brief", "draft", "review", "draft", "review", "draft", "review", "give_up"
        ]
    );
}

#[tokio::test]
async fn a_loop_that_exits_early_resumes_from_every_state() {
    let history = resume_from_every_state::<looping::Workflow>(2).await;
    assert_eq!(
        steps(&history),
        ["brief", "draft", "review", "draft", "review", "publish"]
    );
}

#[tokio::test]
async fn resumes_from_a_typestate_state() {
    let ctx = Ctx::new(Runs::default());
    let flow = linear::Flow::new(&ctx, "5".into()).parse().await.unwrap();
    let state = flow.into_state();
    assert_eq!(state.step(), Some("double"));
    assert_eq!(linear::Workflow::resume(&ctx, state).await.unwrap(), "<10>");
    assert_eq!(ctx.deps().log(), ["parse", "double", "show"]);
}

#[tokio::test]
async fn resumes_from_a_typestate_state_after_a_json_round_trip() {
    let ctx = Ctx::new(Runs::default());
    let flow = looping::Flow::new(&ctx, u32::MAX)
        .brief()
        .await
        .unwrap()
        .draft()
        .await
        .unwrap();
    let looping::VerdictFlow::Revise(flow) = flow.review().await.unwrap() else {
        panic!("never accepts")
    };
    let json = serde_json::to_string(&flow.into_state()).unwrap();
    let state: looping::FlowState = serde_json::from_str(&json).unwrap();
    assert_eq!(state.step(), Some("draft"));
    assert_eq!(state.loops().map(|l| l.review_revise), Some(1));
    // One back-edge left: draft, review (Revise), draft, review (Revise: exhausted).
    assert_eq!(
        looping::Workflow::resume(&ctx, state).await.unwrap(),
        "gave up after 2 at v3"
    );
    assert_eq!(
        ctx.deps().log(),
        [
            "brief", "draft", "review", "draft", "review", "draft", "review", "give_up"
        ]
    );
}

#[tokio::test]
async fn resuming_a_fan_out_runs_only_the_pending_branches() {
    let ctx = Ctx::new(Runs::default());
    let flow = fan::Flow::new(&ctx, "go".into()).plan().await.unwrap();
    let flow = flow.papers().await.unwrap();
    let state = flow.into_state();
    assert_eq!(state.step(), Some("summarize"));
    assert_eq!(
        fan::Workflow::resume(&ctx, state).await.unwrap(),
        "[web:go / 2 / expert on go]"
    );
    assert_eq!(ctx.deps().count("plan"), 1);
    assert_eq!(
        ctx.deps().count("papers"),
        1,
        "the finished branch ran again"
    );
    assert_eq!(ctx.deps().count("web"), 1);
    assert_eq!(ctx.deps().count("people"), 1);
    assert_eq!(ctx.deps().count("summarize"), 1);
}

#[tokio::test]
async fn resuming_a_fan_out_with_every_branch_done_runs_only_the_join() {
    let ctx = Ctx::new(Runs::default());
    let flow = fan::Flow::new(&ctx, "go".into()).plan().await.unwrap();
    let flow = flow
        .people()
        .await
        .unwrap()
        .web()
        .await
        .unwrap()
        .papers()
        .await
        .unwrap();
    let state = flow.into_state();
    let store = Arc::new(MemoryStore::new());
    let resumed = Ctx::builder(Runs::default())
        .store(Arc::clone(&store))
        .run_id("r1")
        .build();
    assert_eq!(
        fan::Workflow::resume(&resumed, state).await.unwrap(),
        "[web:go / 2 / expert on go]"
    );
    assert_eq!(resumed.deps().log(), ["summarize", "publish"]);
    assert_eq!(steps(&store.history(&run_id())), ["summarize", "publish"]);
}

/// How often each branch ran.
#[derive(Debug, Default)]
pub struct Counts {
    pub left: AtomicU32,
    pub right: AtomicU32,
}

#[workflow(deps = Counts)]
pub mod pair {
    use super::*;

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn left(ctx: &Ctx<Counts>, n: u32) -> Result<u32, Never> {
        ctx.deps().left.fetch_add(1, Ordering::SeqCst);
        Ok(n + 1)
    }

    #[step(after = fork)]
    pub async fn right(ctx: &Ctx<Counts>, n: u32) -> Result<u32, Never> {
        ctx.deps().right.fetch_add(1, Ordering::SeqCst);
        Ok(n * 10)
    }

    #[step(after = [left, right], exit)]
    pub async fn join(left: u32, right: u32) -> Result<(u32, u32), Never> {
        Ok((left, right))
    }
}

#[tokio::test]
async fn a_finished_branch_does_not_run_again_on_resume() {
    let ctx = Ctx::new(Counts::default());
    let flow = pair::Flow::new(&ctx, 4)
        .fork()
        .await
        .unwrap()
        .left()
        .await
        .unwrap();
    let state = flow.into_state();
    assert_eq!(pair::Workflow::resume(&ctx, state).await.unwrap(), (5, 40));
    assert_eq!(ctx.deps().left.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.deps().right.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn resuming_the_start_state_is_a_run() {
    let ctx = Ctx::new(Counts::default());
    let state = <pair::Workflow as Workflow>::start(2);
    assert_eq!(pair::Workflow::resume(&ctx, state).await.unwrap(), (3, 20));
    assert_eq!(ctx.deps().left.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.deps().right.load(Ordering::SeqCst), 1);
}
