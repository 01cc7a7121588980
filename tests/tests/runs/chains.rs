//! Branches as chains: a fan-out branch of several steps, each step checkpointed as it ends,
//! the chains running at the same time; `resume` from every state a run can be in mid-branch
//! reaches the uninterrupted run's output, and the typestate API walks each branch.

use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("chain test step failed")]
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

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Topic {
    pub name: String,
}

/// A research fan-out: the web branch searches then summarises, the papers branch searches,
/// ranks (reading the plan) and summarises, and `people` is a branch of one step.
#[workflow(deps = Runs)]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Runs>, name: String) -> Result<Topic, Never> {
        ctx.deps().ran("plan");
        Ok(Topic { name })
    }

    #[step(after = plan)]
    pub async fn search_web(ctx: &Ctx<Runs>, topic: Topic) -> Result<Vec<String>, Never> {
        ctx.deps().ran("search_web");
        Ok(vec![
            format!("{} page", topic.name),
            format!("{} blog", topic.name),
        ])
    }

    #[step(after = search_web)]
    pub async fn summarise_web(ctx: &Ctx<Runs>, pages: Vec<String>) -> Result<String, Never> {
        ctx.deps().ran("summarise_web");
        Ok(pages.join(" + "))
    }

    #[step(after = plan)]
    pub async fn search_papers(ctx: &Ctx<Runs>, topic: Topic) -> Result<Vec<String>, Never> {
        ctx.deps().ran("search_papers");
        Ok(vec![format!("{} survey", topic.name), "old".to_owned()])
    }

    #[step(after = search_papers)]
    pub async fn rank(
        ctx: &Ctx<Runs>,
        papers: Vec<String>,
        #[from(plan)] topic: &Topic,
    ) -> Result<Vec<String>, Never> {
        ctx.deps().ran("rank");
        Ok(papers
            .into_iter()
            .filter(|p| p.contains(&topic.name))
            .collect())
    }

    #[step(after = rank)]
    pub async fn summarise_papers(ctx: &Ctx<Runs>, papers: Vec<String>) -> Result<String, Never> {
        ctx.deps().ran("summarise_papers");
        Ok(format!("{} paper(s): {}", papers.len(), papers.join(", ")))
    }

    #[step(after = plan)]
    pub async fn people(ctx: &Ctx<Runs>, topic: Topic) -> Result<usize, Never> {
        ctx.deps().ran("people");
        Ok(topic.name.len())
    }

    #[step(after = [summarise_web, summarise_papers, people], exit)]
    pub async fn report(
        ctx: &Ctx<Runs>,
        web: String,
        papers: String,
        people: usize,
        #[from(plan)] topic: &Topic,
    ) -> Result<String, Never> {
        ctx.deps().ran("report");
        Ok(format!(
            "{}: {web} | {papers} | {people} people",
            topic.name
        ))
    }
}

const EXPECTED: &str = "rust: rust page + rust blog | 1 paper(s): rust survey | 4 people";

#[tokio::test]
async fn a_fan_out_of_chains_runs_every_step_once() {
    let ctx = Ctx::new(Runs::default());
    let out = research::Workflow::run(&ctx, "rust".into()).await.unwrap();
    assert_eq!(out, EXPECTED);
    let mut log = ctx.deps().log();
    assert_eq!(log.first(), Some(&"plan"));
    assert_eq!(log.last(), Some(&"report"));
    log.sort_unstable();
    assert_eq!(
        log,
        [
            "people",
            "plan",
            "rank",
            "report",
            "search_papers",
            "search_web",
            "summarise_papers",
            "summarise_web"
        ]
    );
}

fn ctx_with(store: &Arc<MemoryStore>) -> Ctx<Runs> {
    Ctx::builder(Runs::default())
        .store(Arc::clone(store))
        .run_id("r1")
        .build()
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort_unstable();
    items
}

fn steps(history: &[Checkpoint]) -> Vec<&str> {
    history.iter().map(|c| c.step.as_str()).collect()
}

/// A checkpoint after every step of every branch, each chain's in its order; a crash after any
/// of them (a resume from it, with a fresh store) runs only the steps that had not run and
/// stores the checkpoints the uninterrupted run stored after it.
#[tokio::test]
async fn resume_from_every_stored_checkpoint_reaches_the_same_output() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(&store);
    let out = research::Workflow::run(&ctx, "rust".into()).await.unwrap();
    assert_eq!(out, EXPECTED);
    let history = store.history(&RunId::from("r1"));
    // The run's start, stored before the first step, is where `run` began: not a resume point.
    assert_eq!(history[0].step, "");
    let history = history[1..].to_vec();
    let names = steps(&history);
    assert_eq!(
        sorted(&names),
        [
            "people",
            "plan",
            "rank",
            "report",
            "search_papers",
            "search_web",
            "summarise_papers",
            "summarise_web"
        ]
    );
    let at = |step: &str| names.iter().position(|s| *s == step).unwrap();
    assert!(at("search_web") < at("summarise_web"));
    assert!(at("search_papers") < at("rank") && at("rank") < at("summarise_papers"));
    assert!(history.last().is_some_and(|c| c.finished));

    for (k, checkpoint) in history.iter().enumerate() {
        let state: research::FlowState = serde_json::from_value(checkpoint.state.clone()).unwrap();
        let fresh = Arc::new(MemoryStore::new());
        let ctx = ctx_with(&fresh);
        let out = research::Workflow::resume(&ctx, state).await.unwrap();
        assert_eq!(
            out, EXPECTED,
            "resumed after checkpoint {k} ({})",
            checkpoint.step
        );
        let rest = &names[k + 1..];
        assert_eq!(
            sorted(&ctx.deps().log()),
            sorted(rest),
            "after checkpoint {k}"
        );
        let again = fresh.history(&RunId::from("r1"));
        assert_eq!(sorted(&steps(&again)), sorted(rest), "after checkpoint {k}");
        // Whatever order the branches ended in, the run ends in the same state.
        if !rest.is_empty() {
            assert_eq!(
                again.last().map(|c| &c.state),
                history.last().map(|c| &c.state)
            );
        }
    }
}

/// Every state a run can be in inside the fan-out, however far each branch got: web at 0..=2
/// steps done, papers at 0..=3, people at 0..=1. Each resumes to the same output, running
/// exactly the steps its branches have left.
#[tokio::test]
async fn resume_from_every_mid_branch_state_reaches_the_same_output() {
    let topic = Topic {
        name: "rust".into(),
    };
    let pages = vec!["rust page".to_owned(), "rust blog".to_owned()];
    let found = vec!["rust survey".to_owned(), "old".to_owned()];
    let ranked = vec!["rust survey".to_owned()];
    let web_steps = ["search_web", "summarise_web"];
    let paper_steps = ["search_papers", "rank", "summarise_papers"];
    let mut states = 0;
    for web in 0..=2 {
        for papers in 0..=3 {
            for people in 0..=1 {
                let state = research::FlowState::Report {
                    input: (web == 0 || papers == 0 || people == 0).then(|| topic.clone()),
                    search_web: (web == 1).then(|| pages.clone()),
                    summarise_web: (web == 2).then(|| "rust page + rust blog".to_owned()),
                    search_papers: (papers == 1).then(|| found.clone()),
                    rank: (papers == 2).then(|| ranked.clone()),
                    summarise_papers: (papers == 3).then(|| "1 paper(s): rust survey".to_owned()),
                    people: (people == 1).then_some(4),
                    plan: topic.clone(),
                    loops: research::Loops::default(),
                };
                // Through JSON, as a store holds it.
                let json = serde_json::to_value(&state).unwrap();
                let state: research::FlowState = serde_json::from_value(json).unwrap();
                assert_eq!(state.step(), Some("report"));
                let fresh = Arc::new(MemoryStore::new());
                let ctx = ctx_with(&fresh);
                let out = research::Workflow::resume(&ctx, state).await.unwrap();
                let at = format!("web {web}, papers {papers}, people {people}");
                assert_eq!(out, EXPECTED, "{at}");
                let mut left: Vec<&str> = web_steps[web..].to_vec();
                left.extend(&paper_steps[papers..]);
                if people == 0 {
                    left.push("people");
                }
                left.push("report");
                assert_eq!(sorted(&ctx.deps().log()), sorted(&left), "{at}");
                assert_eq!(
                    sorted(&steps(&fresh.history(&RunId::from("r1")))),
                    sorted(&left),
                    "{at}"
                );
                states += 1;
            }
        }
    }
    assert_eq!(states, 24);
}

/// A state mid-branch keeps only each branch's latest output (the one its next step takes),
/// named after the step that returned it.
#[tokio::test]
async fn a_stored_mid_branch_state_holds_each_branch_latest_output() {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(&store);
    research::Workflow::run(&ctx, "go".into()).await.unwrap();
    let history = store.history(&RunId::from("r1"));
    let rank = history.iter().find(|c| c.step == "rank").unwrap();
    let fields = &rank.state["Report"];
    assert_eq!(fields["rank"], serde_json::json!(["go survey"]));
    assert_eq!(fields["search_papers"], serde_json::Value::Null);
    assert_eq!(fields["summarise_papers"], serde_json::Value::Null);
    assert_eq!(fields["plan"], serde_json::json!({ "name": "go" }));
}

#[tokio::test]
async fn the_typestate_api_walks_each_branch_in_any_interleaving() {
    use flow_runtime::state::{Done, Pending};
    use research::state::{Rank, Report, SearchPapers, SearchWeb, SummariseWeb};

    let ctx = Ctx::new(Runs::default());
    let flow: research::Flow<Report<SearchWeb, SearchPapers, Pending>> =
        research::Flow::new(&ctx, "rust".into())
            .plan()
            .await
            .unwrap();
    let flow: research::Flow<Report<SearchWeb, Rank, Pending>> =
        flow.search_papers().await.unwrap();
    let flow: research::Flow<Report<SummariseWeb, Rank, Pending>> =
        flow.search_web().await.unwrap();
    let flow = flow.people().await.unwrap().rank().await.unwrap();
    // Handed to `resume` mid-branch: the same state the driver would have stored.
    let state = flow.into_state();
    let research::FlowState::Report {
        search_web,
        rank,
        people,
        ..
    } = &state
    else {
        panic!("{state:?}")
    };
    assert_eq!(
        (
            search_web.as_ref().map(Vec::len),
            rank.as_ref().map(Vec::len),
            *people
        ),
        (Some(2), Some(1), Some(4))
    );
    assert_eq!(
        research::Workflow::resume(&ctx, state).await.unwrap(),
        EXPECTED
    );

    let ctx = Ctx::new(Runs::default());
    let flow = research::Flow::new(&ctx, "rust".into())
        .plan()
        .await
        .unwrap();
    let flow = flow
        .search_web()
        .await
        .unwrap()
        .summarise_web()
        .await
        .unwrap();
    let flow = flow.people().await.unwrap();
    let flow = flow.search_papers().await.unwrap().rank().await.unwrap();
    let flow: research::Flow<Report<Done, Done, Done>> = flow.summarise_papers().await.unwrap();
    assert_eq!(flow.report().await.unwrap(), EXPECTED);
    assert_eq!(
        ctx.deps().log(),
        [
            "plan",
            "search_web",
            "summarise_web",
            "people",
            "search_papers",
            "rank",
            "summarise_papers",
            "report"
        ]
    );
}

/// Two chains whose steps meet at a barrier, first steps and then second steps: the run ends
/// only if the driver runs the second step of one chain while the other chain runs too.
#[workflow(deps = tokio::sync::Barrier)]
pub mod meet {
    use super::*;

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn a1(ctx: &Ctx<tokio::sync::Barrier>, n: u32) -> Result<u32, Never> {
        ctx.deps().wait().await;
        Ok(n + 1)
    }

    #[step(after = a1)]
    pub async fn a2(ctx: &Ctx<tokio::sync::Barrier>, n: u32) -> Result<u32, Never> {
        ctx.deps().wait().await;
        Ok(n * 10)
    }

    #[step(after = fork)]
    pub async fn b1(ctx: &Ctx<tokio::sync::Barrier>, n: u32) -> Result<u32, Never> {
        ctx.deps().wait().await;
        Ok(n + 2)
    }

    #[step(after = b1)]
    pub async fn b2(ctx: &Ctx<tokio::sync::Barrier>, n: u32) -> Result<u32, Never> {
        ctx.deps().wait().await;
        Ok(n * 100)
    }

    #[step(after = [a2, b2], exit)]
    pub async fn join(a: u32, b: u32) -> Result<u32, Never> {
        Ok(a + b)
    }
}

#[tokio::test(start_paused = true)]
async fn the_chains_of_a_fan_out_run_at_the_same_time() {
    let ctx = Ctx::new(tokio::sync::Barrier::new(2));
    // The timeout only turns a driver that runs the chains one after another (which would
    // wait at the barrier forever) into a failure; paused time makes it immediate.
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(3600),
        meet::Workflow::run(&ctx, 1),
    )
    .await
    .expect("the chains did not run at the same time")
    .unwrap();
    assert_eq!(out, 20 + 300);
}
