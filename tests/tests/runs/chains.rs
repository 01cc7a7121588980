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
        Ok(vec![format!("{} page", topic.name), format!("{} blog", topic.name)])
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
        Ok(papers.into_iter().filter(|p| p.contains(&topic.name)).collect())
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
        Ok(format!("{}: {web} | {papers} | {people} people", topic.name))
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
        ["people", "plan", "rank", "report", "search_papers", "search_web", "summarise_papers", "summarise_web"]
    );
}
