//! A routing step: each variant of its enum leads to its own step, by name or by `#[to(…)]`,
//! in `run` and in the typestate API; the routes not taken do not run.

use flow_runtime::prelude::*;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("routing failed")]
pub struct Never;

/// Records which steps ran, in order.
#[derive(Debug, Default)]
pub struct Log(Mutex<Vec<&'static str>>);

impl Log {
    fn push(&self, step: &'static str) {
        self.0.lock().unwrap().push(step);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[workflow(deps = Log)]
pub mod triage {
    use super::*;

    #[derive(Debug)]
    pub enum Route {
        /// To `billing`, by name.
        Billing(u32),
        /// To `escalate`, renamed.
        #[to(escalate)]
        Urgent(String),
        /// To `tech`, which continues to `answer`.
        Tech(Vec<String>),
    }

    #[step(entry, routes = Route)]
    pub async fn intake(ctx: &Ctx<Log>, text: String) -> Result<Route, Never> {
        ctx.deps().push("intake");
        Ok(if let Some(amount) = text.strip_prefix("refund ") {
            Route::Billing(amount.parse().unwrap_or(0))
        } else if text.contains('!') {
            Route::Urgent(text)
        } else {
            Route::Tech(text.split_whitespace().map(str::to_owned).collect())
        })
    }

    #[step(after = intake, exit)]
    pub async fn billing(ctx: &Ctx<Log>, amount: u32) -> Result<String, Never> {
        ctx.deps().push("billing");
        Ok(format!("refunded {amount}"))
    }

    #[step(after = intake, exit)]
    pub async fn escalate(ctx: &Ctx<Log>, text: String) -> Result<String, Never> {
        ctx.deps().push("escalate");
        Ok(format!("paged: {text}"))
    }

    #[step(after = intake)]
    pub async fn tech(ctx: &Ctx<Log>, words: Vec<String>) -> Result<usize, Never> {
        ctx.deps().push("tech");
        Ok(words.len())
    }

    #[step(after = tech, exit)]
    pub async fn answer(ctx: &Ctx<Log>, n: usize) -> Result<String, Never> {
        ctx.deps().push("answer");
        Ok(format!("{n} words"))
    }
}

/// A route in the middle of a chain, after a plain step.
#[workflow]
pub mod sign {
    use super::*;

    pub enum Sign {
        Negative(i64),
        #[to(positive)]
        NonNegative(i64),
    }

    #[step(entry)]
    pub async fn subtract(pair: (i64, i64)) -> Result<i64, Never> {
        Ok(pair.0 - pair.1)
    }

    #[step(after = subtract, routes = Sign)]
    pub async fn classify(n: i64) -> Result<Sign, Never> {
        Ok(if n < 0 {
            Sign::Negative(n)
        } else {
            Sign::NonNegative(n)
        })
    }

    #[step(after = classify, exit)]
    pub async fn negative(n: i64) -> Result<String, Never> {
        Ok(format!("minus {}", -n))
    }

    #[step(after = classify, exit)]
    pub async fn positive(n: i64) -> Result<String, Never> {
        Ok(format!("plus {n}"))
    }
}

/// Routes into a fan-out and into a workers step; the join then loops.
#[workflow]
pub mod mixed {
    use super::*;

    pub enum Kind {
        Fan(u32),
        Work(Vec<u32>),
    }

    pub enum Verdict {
        #[to(draft, max = 2, exhausted = give_up)]
        Again(u32),
        Publish(u32),
    }

    #[step(entry, routes = Kind)]
    pub async fn start(x: u32) -> Result<Kind, Never> {
        Ok(if x.is_multiple_of(2) {
            Kind::Fan(x)
        } else {
            Kind::Work(vec![x, x + 1, x + 2])
        })
    }

    #[step(after = start)]
    pub async fn fan(x: u32) -> Result<u32, Never> {
        Ok(x)
    }

    #[step(after = fan)]
    pub async fn left(x: u32) -> Result<u32, Never> {
        Ok(x * 10)
    }

    #[step(after = fan)]
    pub async fn right(x: u32) -> Result<String, Never> {
        Ok(x.to_string())
    }

    #[step(after = [left, right])]
    pub async fn join(l: u32, r: String) -> Result<u32, Never> {
        Ok(l + u32::try_from(r.len()).unwrap_or(0))
    }

    #[step(after = join)]
    pub async fn draft(x: u32) -> Result<u32, Never> {
        Ok(x + 1)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(x: u32) -> Result<Verdict, Never> {
        Ok(if x > 1000 {
            Verdict::Publish(x)
        } else {
            Verdict::Again(x)
        })
    }

    #[step(after = review, exit)]
    pub async fn publish(x: u32) -> Result<u32, Never> {
        Ok(x)
    }

    #[step(after = review, exit)]
    pub async fn give_up(e: LoopExhausted<u32>) -> Result<u32, Never> {
        Ok(e.last + 1_000_000)
    }

    #[step(after = start, workers = 2)]
    pub async fn work(x: u32) -> Result<u32, Never> {
        Ok(x * 2)
    }

    #[step(after = work, exit)]
    pub async fn sum(xs: Vec<u32>) -> Result<u32, Never> {
        Ok(xs.iter().sum())
    }
}

#[tokio::test]
async fn run_takes_the_billing_route() {
    let ctx = Ctx::new(Log::default());
    assert_eq!(
        triage::Workflow::run(&ctx, "refund 30".into())
            .await
            .unwrap(),
        "refunded 30"
    );
    assert_eq!(ctx.deps().take(), ["intake", "billing"]);
}

#[tokio::test]
async fn run_takes_a_renamed_route() {
    let ctx = Ctx::new(Log::default());
    assert_eq!(
        triage::Workflow::run(&ctx, "down!".into()).await.unwrap(),
        "paged: down!"
    );
    assert_eq!(ctx.deps().take(), ["intake", "escalate"]);
}

#[tokio::test]
async fn run_takes_a_route_that_continues_past_its_target() {
    let ctx = Ctx::new(Log::default());
    assert_eq!(
        triage::Workflow::run(&ctx, "my screen is dark".into())
            .await
            .unwrap(),
        "4 words"
    );
    assert_eq!(ctx.deps().take(), ["intake", "tech", "answer"]);
}

#[tokio::test]
async fn a_route_after_a_plain_step_takes_each_branch() {
    assert_eq!(
        sign::Workflow::run(&Ctx::new(()), (1, 5)).await.unwrap(),
        "minus 4"
    );
    assert_eq!(
        sign::Workflow::run(&Ctx::new(()), (5, 1)).await.unwrap(),
        "plus 4"
    );
    assert_eq!(
        sign::Workflow::run(&Ctx::new(()), (3, 3)).await.unwrap(),
        "plus 0"
    );
}

#[tokio::test]
async fn typestate_returns_a_handle_per_route() {
    let ctx = Ctx::new(Log::default());

    let flow = triage::Flow::new(&ctx, "refund 7".into());
    let triage::RouteFlow::Billing(flow) = flow.intake().await.unwrap() else {
        panic!("expected billing")
    };
    assert_eq!(*flow.input(), 7);
    assert_eq!(flow.billing().await.unwrap(), "refunded 7");

    assert_eq!(ctx.deps().take(), ["intake", "billing"]);

    // Each run with a context of its own.
    let ctx = Ctx::new(Log::default());
    let flow = triage::Flow::new(&ctx, "fire!".into());
    let triage::RouteFlow::Urgent(flow) = flow.intake().await.unwrap() else {
        panic!("expected urgent")
    };
    assert_eq!(flow.input(), "fire!");
    assert_eq!(flow.escalate().await.unwrap(), "paged: fire!");

    assert_eq!(ctx.deps().take(), ["intake", "escalate"]);

    let ctx = Ctx::new(Log::default());
    let flow = triage::Flow::new(&ctx, "a b".into());
    let triage::RouteFlow::Tech(flow) = flow.intake().await.unwrap() else {
        panic!("expected tech")
    };
    assert_eq!(flow.input(), &["a", "b"]);
    assert_eq!(
        flow.tech().await.unwrap().answer().await.unwrap(),
        "2 words"
    );

    assert_eq!(ctx.deps().take(), ["intake", "tech", "answer"]);
}

#[tokio::test]
async fn the_state_after_a_route_points_at_its_target() {
    let ctx = Ctx::new(Log::default());
    let triage::RouteFlow::Urgent(flow) =
        triage::Flow::new(&ctx, "x!".into()).intake().await.unwrap()
    else {
        panic!("expected urgent")
    };
    let state = flow.into_state();
    assert_eq!(state.step(), Some("escalate"));
    let triage::FlowState::Escalate { input, .. } = &state else {
        panic!("{state:?}")
    };
    assert_eq!(input, "x!");
}

#[tokio::test]
async fn routes_lead_into_a_fan_out_and_into_workers() {
    // 1 is odd: workers on [1, 2, 3] → [2, 4, 6] → 12.
    assert_eq!(mixed::Workflow::run(&Ctx::new(()), 1).await.unwrap(), 12);
    // 2 is even: fan-out → 20 + 1 = 21 → draft 22 → Again, 23 → Again, 24 → exhausted.
    assert_eq!(
        mixed::Workflow::run(&Ctx::new(()), 2).await.unwrap(),
        1_000_024
    );
    // 200: 2000 + 3 = 2003 → draft 2004 → Publish.
    assert_eq!(
        mixed::Workflow::run(&Ctx::new(()), 200).await.unwrap(),
        2004
    );

    let mixed::KindFlow::Fan(flow) = mixed::Flow::new(&Ctx::new(()), 2).start().await.unwrap()
    else {
        panic!("2 is even")
    };
    let flow = flow
        .fan()
        .await
        .unwrap()
        .right()
        .await
        .unwrap()
        .left()
        .await
        .unwrap();
    let flow = flow.join().await.unwrap().draft().await.unwrap();
    let mixed::VerdictFlow::Again(flow) = flow.review().await.unwrap() else {
        panic!("22 is small")
    };
    assert_eq!(*flow.input(), 22);

    let mixed::KindFlow::Work(flow) = mixed::Flow::new(&Ctx::new(()), 5).start().await.unwrap()
    else {
        panic!("5 is odd")
    };
    assert_eq!(
        flow.work().await.unwrap().sum().await.unwrap(),
        10 + 12 + 14
    );
}

#[test]
fn the_diagram_shows_every_route() {
    for edge in [
        "intake -->|Billing| billing",
        "intake -->|Urgent| escalate",
        "intake -->|Tech| tech",
        "tech --> answer",
    ] {
        assert!(
            triage::MERMAID.contains(edge),
            "missing `{edge}` in\n{}",
            triage::MERMAID
        );
    }
}
