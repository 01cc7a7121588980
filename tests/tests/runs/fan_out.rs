//! Fan-out and join: every branch receives a clone of the fan-out step's output, the branches
//! of `run` run concurrently, and the join receives their outputs in the order of its
//! `after = [...]`. The typestate API runs the branches in any order.

use flow_runtime::prelude::*;
use flow_runtime::state::{Done, Pending};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Barrier;

#[derive(Debug, thiserror::Error)]
#[error("branch failed: {0}")]
pub struct BranchError(String);

/// Both branches wait on `barrier` when it is set: two branches run one after the other would
/// never get past it.
#[derive(Debug, Default)]
pub struct Deps {
    pub barrier: Option<Barrier>,
    pub web_runs: AtomicU32,
    pub papers_runs: AtomicU32,
    pub fail_papers: bool,
}

impl Deps {
    async fn meet(&self) {
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub topic: String,
    pub depth: u32,
}

#[workflow(deps = Deps)]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(topic: String) -> Result<Plan, BranchError> {
        Ok(Plan { topic, depth: 3 })
    }

    #[step(after = plan)]
    pub async fn web(ctx: &Ctx<Deps>, plan: Plan) -> Result<Vec<String>, BranchError> {
        ctx.deps().web_runs.fetch_add(1, Ordering::SeqCst);
        ctx.deps().meet().await;
        Ok((1..=plan.depth)
            .map(|i| format!("{} page {i}", plan.topic))
            .collect())
    }

    #[step(after = plan)]
    pub async fn papers(ctx: &Ctx<Deps>, plan: Plan) -> Result<u32, BranchError> {
        ctx.deps().papers_runs.fetch_add(1, Ordering::SeqCst);
        ctx.deps().meet().await;
        if ctx.deps().fail_papers {
            return Err(BranchError("no library".into()));
        }
        Ok(plan.depth * 10)
    }

    #[step(after = [web, papers], exit)]
    pub async fn summarize(web: Vec<String>, papers: u32) -> Result<String, BranchError> {
        Ok(format!(
            "{} pages, {papers} papers: {}",
            web.len(),
            web.join("; ")
        ))
    }
}

/// Three branches with the same output type, declared in one order and joined in another:
/// only the order of `after = [...]` may decide which parameter gets which output.
#[workflow]
pub mod order {
    use super::*;

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, BranchError> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn a(n: u32) -> Result<String, BranchError> {
        Ok(format!("a{n}"))
    }

    #[step(after = fork)]
    pub async fn b(n: u32) -> Result<String, BranchError> {
        Ok(format!("b{n}"))
    }

    #[step(after = fork)]
    pub async fn c(n: u32) -> Result<String, BranchError> {
        Ok(format!("c{n}"))
    }

    #[step(after = [c, a, b], exit)]
    pub async fn join(c: String, a: String, b: String) -> Result<String, BranchError> {
        Ok(format!("{c} {a} {b}"))
    }
}

/// A fan-out in the middle of a chain, with a branch that has workers.
#[workflow]
pub mod middle {
    use super::*;

    #[step(entry)]
    pub async fn split(s: String) -> Result<Vec<u32>, BranchError> {
        s.split(',')
            .map(|p| p.trim().parse().map_err(|_| BranchError(p.to_owned())))
            .collect()
    }

    #[step(after = split)]
    pub async fn total(xs: Vec<u32>) -> Result<u32, BranchError> {
        Ok(xs.iter().sum())
    }

    #[step(after = split, workers = 2)]
    pub async fn double(x: u32) -> Result<u32, BranchError> {
        Ok(x * 2)
    }

    #[step(after = [total, double])]
    pub async fn combine(total: u32, doubled: Vec<u32>) -> Result<(u32, Vec<u32>), BranchError> {
        Ok((total, doubled))
    }

    #[step(after = combine, exit)]
    pub async fn render(pair: (u32, Vec<u32>)) -> Result<String, BranchError> {
        Ok(format!("{} {:?}", pair.0, pair.1))
    }
}

/// A join that routes.
#[workflow]
pub mod pick {
    use super::*;

    pub enum Winner {
        Small(u32),
        Large(u32),
    }

    #[step(entry)]
    pub async fn both(n: u32) -> Result<u32, BranchError> {
        Ok(n)
    }

    #[step(after = both)]
    pub async fn low(n: u32) -> Result<u32, BranchError> {
        Ok(n)
    }

    #[step(after = both)]
    pub async fn high(n: u32) -> Result<u32, BranchError> {
        Ok(n * 100)
    }

    #[step(after = [low, high], routes = Winner)]
    pub async fn compare(low: u32, high: u32) -> Result<Winner, BranchError> {
        Ok(if high > 500 {
            Winner::Large(high)
        } else {
            Winner::Small(low)
        })
    }

    #[step(after = compare, exit)]
    pub async fn small(n: u32) -> Result<String, BranchError> {
        Ok(format!("small {n}"))
    }

    #[step(after = compare, exit)]
    pub async fn large(n: u32) -> Result<String, BranchError> {
        Ok(format!("large {n}"))
    }
}

fn with_barrier() -> Deps {
    Deps {
        barrier: Some(Barrier::new(2)),
        ..Deps::default()
    }
}

const EXPECTED: &str = "3 pages, 30 papers: rust page 1; rust page 2; rust page 3";

#[tokio::test]
async fn run_runs_branches_concurrently() {
    // Each branch waits at a barrier of two: run one after the other, they would wait forever.
    let ctx = Ctx::new(with_barrier());
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        research::Workflow::run(&ctx, "rust".into()),
    )
    .await
    .expect("the branches did not run concurrently: the barrier never opened")
    .unwrap();
    assert_eq!(out, EXPECTED);
    assert_eq!(ctx.deps().web_runs.load(Ordering::SeqCst), 1);
    assert_eq!(ctx.deps().papers_runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_runs_branches_concurrently_on_a_multi_thread_runtime() {
    let ctx = Ctx::new(with_barrier());
    let run = research::Workflow::run(&ctx, "rust".into());
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("barrier never opened")
        .unwrap();
    assert_eq!(out, EXPECTED);
}

#[tokio::test]
async fn a_run_is_send_so_it_can_be_spawned() {
    let ctx = Ctx::new(with_barrier());
    let handle = tokio::spawn(async move { research::Workflow::run(&ctx, "rust".into()).await });
    let out = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(out, EXPECTED);
}

#[tokio::test]
async fn typestate_runs_branches_in_either_order() {
    let ctx = Ctx::new(Deps::default());

    let flow: research::Flow<research::state::Summarize<Pending, Pending>> =
        research::Flow::new(&ctx, "rust".into())
            .plan()
            .await
            .unwrap();
    assert_eq!(
        flow.input().0,
        Plan {
            topic: "rust".into(),
            depth: 3
        }
    );
    let flow: research::Flow<research::state::Summarize<Pending, Done>> =
        flow.papers().await.unwrap();
    assert_eq!(flow.input().2, 30);
    let flow: research::Flow<research::state::Summarize<Done, Done>> = flow.web().await.unwrap();
    assert_eq!(flow.input().1.len(), 3);
    assert_eq!(flow.summarize().await.unwrap(), EXPECTED);

    // The other order, in a run of its own.
    let again = Ctx::new(Deps::default());
    let flow = research::Flow::new(&again, "rust".into())
        .plan()
        .await
        .unwrap();
    let flow = flow.web().await.unwrap().papers().await.unwrap();
    assert_eq!(flow.summarize().await.unwrap(), EXPECTED);

    for ctx in [&ctx, &again] {
        assert_eq!(ctx.deps().web_runs.load(Ordering::SeqCst), 1);
        assert_eq!(ctx.deps().papers_runs.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn the_join_receives_outputs_in_the_order_of_its_after_list() {
    // Declared a, b, c; joined as [c, a, b].
    let ctx = Ctx::new(());
    assert_eq!(order::Workflow::run(&ctx, 1).await.unwrap(), "c1 a1 b1");
}

#[tokio::test]
async fn typestate_join_receives_outputs_in_the_order_of_its_after_list() {
    let ctx = Ctx::new(());
    let flow = order::Flow::new(&ctx, 2).fork().await.unwrap();
    let flow = flow
        .b()
        .await
        .unwrap()
        .c()
        .await
        .unwrap()
        .a()
        .await
        .unwrap();
    assert_eq!(flow.join().await.unwrap(), "c2 a2 b2");
}

#[tokio::test]
async fn typestate_state_names_each_branch_output_by_its_branch() {
    let ctx = Ctx::new(());
    let flow = order::Flow::new(&ctx, 3)
        .fork()
        .await
        .unwrap()
        .a()
        .await
        .unwrap();
    let state = flow.into_state();
    let order::FlowState::Join { input, a, b, c, .. } = &state else {
        panic!("{state:?}")
    };
    assert_eq!(
        (*input, a.as_deref(), b.as_deref(), c.as_deref()),
        (Some(3), Some("a3"), None, None)
    );
    assert_eq!(
        order::Workflow::resume(&ctx, state).await.unwrap(),
        "c3 a3 b3"
    );
}

#[tokio::test]
async fn a_fan_out_in_the_middle_with_a_worker_branch() {
    let ctx = Ctx::new(());
    assert_eq!(
        middle::Workflow::run(&ctx, "1, 2, 3".into()).await.unwrap(),
        "6 [2, 4, 6]"
    );
    let flow = middle::Flow::new(&Ctx::new(()), "4,5".into())
        .split()
        .await
        .unwrap()
        .total()
        .await
        .unwrap();
    let flow = flow.double().await.unwrap().combine().await.unwrap();
    assert_eq!(*flow.input(), (9, vec![8, 10]));
    assert_eq!(flow.render().await.unwrap(), "9 [8, 10]");
}

#[tokio::test]
async fn each_branch_gets_its_own_clone_of_the_input() {
    let ctx = Ctx::new(Deps::default());
    let flow = research::Flow::new(&ctx, "x".into()).plan().await.unwrap();
    let flow = flow.web().await.unwrap();
    // The fan-out's output is still there for the other branch.
    assert_eq!(flow.input().0.topic, "x");
    let state = flow.into_state();
    let research::FlowState::Summarize {
        input, web, papers, ..
    } = &state
    else {
        panic!("{state:?}")
    };
    assert_eq!(input.as_ref().map(|p| p.topic.as_str()), Some("x"));
    assert_eq!(web.as_ref().map(Vec::len), Some(3));
    assert_eq!(*papers, None);
}

#[tokio::test]
async fn a_failing_branch_fails_the_run_and_the_join_does_not_run() {
    let ctx = Ctx::new(Deps {
        fail_papers: true,
        ..with_barrier()
    });
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        research::Workflow::run(&ctx, "rust".into()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.step(), Some("papers"));
    assert!(
        matches!(&err, research::FlowError::Papers(BranchError(m)) if m == "no library"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_join_can_route() {
    let ctx = Ctx::new(());
    assert_eq!(
        pick::Workflow::run(&Ctx::new(()), 2).await.unwrap(),
        "small 2"
    );
    assert_eq!(
        pick::Workflow::run(&Ctx::new(()), 6).await.unwrap(),
        "large 600"
    );
    let flow = pick::Flow::new(&ctx, 7)
        .both()
        .await
        .unwrap()
        .high()
        .await
        .unwrap()
        .low()
        .await
        .unwrap();
    let pick::WinnerFlow::Large(flow) = flow.compare().await.unwrap() else {
        panic!("700 is large")
    };
    assert_eq!(flow.large().await.unwrap(), "large 700");
}

#[test]
fn the_diagram_shows_the_fan_out_and_the_join() {
    for edge in [
        "plan --> web",
        "plan --> papers",
        "web --> summarize",
        "papers --> summarize",
    ] {
        assert!(
            research::MERMAID.contains(edge),
            "missing `{edge}` in\n{}",
            research::MERMAID
        );
    }
}
