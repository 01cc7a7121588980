//! Branches as chains on a real store: a run stopped (paused) after any of its checkpoints,
//! mid-branch included, continues with `run_or_resume` once unpaused, to the uninterrupted
//! run's output, every step checkpointed exactly once over both turns.

use flow_runtime::prelude::*;
use flow_runtime::store::{RunControl, RunStatus, SqliteStore};
use flow_tests::store::TempDb;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("chain test step failed")]
pub struct Failed;

/// Pauses run `r1` in its store while the `at`-th step to run runs (0: never), so that the
/// checkpoint after it is refused and the run stops there.
pub struct Stop {
    store: Arc<SqliteStore>,
    at: u32,
    steps: AtomicU32,
    log: Mutex<Vec<&'static str>>,
}

impl Stop {
    async fn step(&self, name: &'static str) {
        self.log.lock().unwrap().push(name);
        if self.steps.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            self.store.pause(&RunId::from("r1")).await.unwrap();
        }
    }
}

/// `plan` fans out to `search → summarise`, `papers → rank → digest` and `people`.
#[workflow(deps = Stop)]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(ctx: &Ctx<Stop>, topic: String) -> Result<String, Failed> {
        ctx.deps().step("plan").await;
        Ok(topic)
    }

    #[step(after = plan)]
    pub async fn search(ctx: &Ctx<Stop>, topic: String) -> Result<Vec<String>, Failed> {
        ctx.deps().step("search").await;
        Ok(vec![format!("{topic} page"), format!("{topic} blog")])
    }

    #[step(after = search)]
    pub async fn summarise(ctx: &Ctx<Stop>, pages: Vec<String>) -> Result<String, Failed> {
        ctx.deps().step("summarise").await;
        Ok(pages.join(" + "))
    }

    #[step(after = plan)]
    pub async fn papers(ctx: &Ctx<Stop>, topic: String) -> Result<Vec<String>, Failed> {
        ctx.deps().step("papers").await;
        Ok(vec![format!("{topic} survey"), "old".to_owned()])
    }

    #[step(after = papers)]
    pub async fn rank(
        ctx: &Ctx<Stop>,
        papers: Vec<String>,
        #[from(plan)] topic: &str,
    ) -> Result<Vec<String>, Failed> {
        ctx.deps().step("rank").await;
        Ok(papers.into_iter().filter(|p| p.contains(topic)).collect())
    }

    #[step(after = rank)]
    pub async fn digest(ctx: &Ctx<Stop>, papers: Vec<String>) -> Result<String, Failed> {
        ctx.deps().step("digest").await;
        Ok(papers.join(", "))
    }

    #[step(after = plan)]
    pub async fn people(ctx: &Ctx<Stop>, topic: String) -> Result<usize, Failed> {
        ctx.deps().step("people").await;
        Ok(topic.len())
    }

    #[step(after = [summarise, digest, people], exit)]
    pub async fn report(
        ctx: &Ctx<Stop>,
        web: String,
        papers: String,
        people: usize,
    ) -> Result<String, Failed> {
        ctx.deps().step("report").await;
        Ok(format!("{web} | {papers} | {people}"))
    }
}

const EXPECTED: &str = "rust page + rust blog | rust survey | 4";

fn ctx(store: &Arc<SqliteStore>, at: u32) -> Ctx<Stop> {
    let stop = Stop {
        store: Arc::clone(store),
        at,
        steps: AtomicU32::new(0),
        log: Mutex::default(),
    };
    Ctx::builder(stop)
        .store(Arc::clone(store))
        .run_id("r1")
        .build()
}

#[tokio::test]
async fn a_run_stopped_after_any_checkpoint_mid_branch_resumes_to_the_same_output() {
    // "": the run's start, which `run` stores before its first step.
    let all = [
        "",
        "digest",
        "papers",
        "people",
        "plan",
        "rank",
        "report",
        "search",
        "summarise",
    ];
    // The run exists from its first checkpoint on: the second step to run is the first that
    // can pause it.
    for at in 2..=8 {
        let db = TempDb::new();
        let store = db.open();
        let first = ctx(&store, at);
        let error = research::Workflow::run(&first, "rust".to_owned())
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                research::FlowError::Runtime(RuntimeError::Stopped {
                    status: RunStatus::Paused,
                    ..
                })
            ),
            "paused at step {at}: {error:?}"
        );
        // Stopped before its end: the checkpoint after the pausing step was refused.
        let stored = store.history(&RunId::from("r1")).await.unwrap().len();
        assert!(stored < 9, "paused at step {at}: {stored} checkpoints");

        store.unpause(&RunId::from("r1")).await.unwrap();
        let second = ctx(&store, 0);
        let out = research::Workflow::run_or_resume(&second, "ignored".to_owned()).await;
        assert_eq!(out.unwrap(), EXPECTED, "paused at step {at}");

        // Every step is checkpointed exactly once over both turns; the second runs only what
        // the first did not store.
        let history = store.history(&RunId::from("r1")).await.unwrap();
        let mut steps: Vec<&str> = history.iter().map(|h| h.step.as_str()).collect();
        steps.sort_unstable();
        assert_eq!(steps, all, "paused at step {at}");
        let ran_again = second.deps().log.lock().unwrap().len();
        // `stored` counts the run's start, which is no step.
        assert_eq!(ran_again, 8 - (stored - 1), "paused at step {at}");
    }
}
