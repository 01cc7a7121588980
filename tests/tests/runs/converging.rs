//! Converging routes (`after = a | b`): the step after them runs once, after whichever route
//! ran, in `run`, in `resume` from every stored state, and in the typestate API; a loop's exit
//! and a route converge the same way.

use flow_runtime::prelude::*;
use flow_runtime::store::Checkpoint;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
#[error("converging test step failed")]
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

#[workflow(deps = Runs)]
pub mod support {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub enum Triage {
        OrderStatus(String),
        Escalate(String),
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub enum Review {
        #[to(draft, max = 1, exhausted = give_up)]
        Revise(String),
        Approve(String),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(ctx: &Ctx<Runs>, text: String) -> Result<Triage, Never> {
        ctx.deps().ran("intake");
        Ok(if text.contains('!') {
            Triage::Escalate(text)
        } else {
            Triage::OrderStatus(text)
        })
    }

    #[step(after = intake)]
    pub async fn order_status(ctx: &Ctx<Runs>, order: String) -> Result<String, Never> {
        ctx.deps().ran("order_status");
        Ok(format!("order {order} ships tomorrow"))
    }

    #[step(after = intake)]
    pub async fn escalate(ctx: &Ctx<Runs>, text: String) -> Result<String, Never> {
        ctx.deps().ran("escalate");
        Ok(format!("a person reads `{text}`"))
    }

    #[step(after = order_status | escalate)]
    pub async fn draft(ctx: &Ctx<Runs>, answer: String) -> Result<String, Never> {
        ctx.deps().ran("draft");
        Ok(format!("{answer}."))
    }

    /// Approves a short draft; a long one is revised once, then given up on.
    #[step(after = draft, routes = Review)]
    pub async fn review(ctx: &Ctx<Runs>, draft: String) -> Result<Review, Never> {
        ctx.deps().ran("review");
        Ok(if draft.len() < 30 {
            Review::Approve(draft)
        } else {
            Review::Revise(draft)
        })
    }

    #[step(after = review)]
    pub async fn approve(ctx: &Ctx<Runs>, draft: String) -> Result<String, Never> {
        ctx.deps().ran("approve");
        Ok(format!("approved: {draft}"))
    }

    #[step(after = review)]
    pub async fn give_up(ctx: &Ctx<Runs>, last: LoopExhausted<String>) -> Result<String, Never> {
        ctx.deps().ran("give_up");
        Ok(format!("given up after {}: {}", last.iterations, last.last))
    }

    #[step(after = approve | give_up, exit)]
    pub async fn send(ctx: &Ctx<Runs>, text: String) -> Result<String, Never> {
        ctx.deps().ran("send");
        Ok(format!("sent {text}"))
    }
}

fn ctx_with(store: &Arc<MemoryStore>) -> Ctx<Runs> {
    Ctx::builder(Runs::default())
        .store(Arc::clone(store))
        .run_id("c1")
        .build()
}

/// Runs `input` uninterrupted, then resumes from the start and from every stored state with a
/// fresh store: the same output, the same remaining checkpoints, only the remaining steps.
/// Returns the steps of the uninterrupted run's checkpoints.
async fn resume_from_every_state(input: &str) -> (String, Vec<String>) {
    let store = Arc::new(MemoryStore::new());
    let ctx = ctx_with(&store);
    let expected = support::Workflow::run(&ctx, input.to_owned())
        .await
        .unwrap();
    let full_log = ctx.deps().log();
    let history: Vec<Checkpoint> = store.history(&RunId::from("c1"));
    // `run` stored the run's start first; a resume does not.
    assert_eq!(history[0].step, "");
    let history = history[1..].to_vec();
    let states = std::iter::once(<support::Workflow as Workflow>::start(input.to_owned())).chain(
        history
            .iter()
            .map(|c| serde_json::from_value::<support::FlowState>(c.state.clone()).unwrap()),
    );
    for (k, state) in states.enumerate() {
        let at = format!("{state:?}");
        let fresh = Arc::new(MemoryStore::new());
        let ctx = ctx_with(&fresh);
        let out = support::Workflow::resume(&ctx, state).await.unwrap();
        assert_eq!(out, expected, "resumed from {at}");
        assert_eq!(
            fresh.history(&RunId::from("c1")),
            history[k..],
            "checkpoints after {at}"
        );
        let log = ctx.deps().log();
        assert!(
            full_log.ends_with(&log),
            "resumed from {at}, ran {log:?}; uninterrupted: {full_log:?}"
        );
    }
    (expected, history.into_iter().map(|c| c.step).collect())
}

#[tokio::test]
async fn either_route_continues_at_the_step_they_converge_on() {
    let (out, steps) = resume_from_every_state("42").await;
    assert_eq!(out, "sent approved: order 42 ships tomorrow.");
    assert_eq!(
        steps,
        [
            "intake",
            "order_status",
            "draft",
            "review",
            "approve",
            "send"
        ]
    );

    let (out, steps) = resume_from_every_state("help!").await;
    assert_eq!(out, "sent approved: a person reads `help!`.");
    assert_eq!(
        steps,
        ["intake", "escalate", "draft", "review", "approve", "send"]
    );
}

#[tokio::test]
async fn a_loop_exit_and_a_route_converge() {
    let (out, steps) = resume_from_every_state("a very long order number 1234567").await;
    assert!(
        out.starts_with("sent given up after 1: order a very long"),
        "{out}"
    );
    assert_eq!(
        steps,
        [
            "intake",
            "order_status",
            "draft",
            "review",
            "draft",
            "review",
            "give_up",
            "send"
        ]
    );
}

#[tokio::test]
async fn the_typestate_api_reaches_the_converging_step_from_either_route() {
    for (input, route) in [("7", "order_status"), ("now!", "escalate")] {
        let ctx = Ctx::new(Runs::default());
        let flow = support::Flow::new(&ctx, input.to_owned());
        // Both handles have the same type: the step after them is one method.
        let flow: support::Flow<support::state::Draft> = match flow.intake().await.unwrap() {
            support::TriageFlow::OrderStatus(flow) => flow.order_status().await.unwrap(),
            support::TriageFlow::Escalate(flow) => flow.escalate().await.unwrap(),
        };
        assert_eq!(flow.into_state().step(), Some("draft"));
        assert_eq!(ctx.deps().log(), ["intake", route]);
    }
}
