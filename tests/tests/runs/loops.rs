//! Loops: a route variant going back to an earlier step. A bounded back-edge is taken at most
//! `max` times; asked once more, the run goes to the `exhausted` step with `LoopExhausted`.
//! A loop may also leave early by another route, and an unbounded back-edge is fine when the
//! loop has a way out.

use flow_runtime::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
#[error("loop step failed")]
pub struct Never;

/// How often each step ran, and after how many drafts the review accepts (`u32::MAX`: never).
#[derive(Debug)]
pub struct Deps {
    pub accept_at: u32,
    pub drafts: AtomicU32,
    pub reviews: AtomicU32,
    pub publishes: AtomicU32,
    pub give_ups: AtomicU32,
}

impl Deps {
    fn accepting_at(accept_at: u32) -> Self {
        Self {
            accept_at,
            drafts: AtomicU32::new(0),
            reviews: AtomicU32::new(0),
            publishes: AtomicU32::new(0),
            give_ups: AtomicU32::new(0),
        }
    }

    fn never() -> Self {
        Self::accepting_at(u32::MAX)
    }

    fn counts(&self) -> [u32; 4] {
        [&self.drafts, &self.reviews, &self.publishes, &self.give_ups]
            .map(|c| c.load(Ordering::SeqCst))
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub text: String,
    pub version: u32,
}

#[workflow(deps = Deps)]
pub mod writer {
    use super::*;

    #[derive(Debug)]
    pub enum Verdict {
        #[to(draft, max = 3, exhausted = give_up)]
        Revise(Draft),
        Publish(Draft),
    }

    #[step(entry)]
    pub async fn brief(topic: String) -> Result<Draft, Never> {
        Ok(Draft {
            text: topic,
            version: 0,
        })
    }

    #[step(after = brief)]
    pub async fn draft(ctx: &Ctx<Deps>, draft: Draft) -> Result<Draft, Never> {
        ctx.deps().drafts.fetch_add(1, Ordering::SeqCst);
        Ok(Draft {
            text: format!("{}+", draft.text),
            version: draft.version + 1,
        })
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(ctx: &Ctx<Deps>, draft: Draft) -> Result<Verdict, Never> {
        ctx.deps().reviews.fetch_add(1, Ordering::SeqCst);
        Ok(if draft.version >= ctx.deps().accept_at {
            Verdict::Publish(draft)
        } else {
            Verdict::Revise(draft)
        })
    }

    #[step(after = review, exit)]
    pub async fn publish(ctx: &Ctx<Deps>, draft: Draft) -> Result<String, Never> {
        ctx.deps().publishes.fetch_add(1, Ordering::SeqCst);
        Ok(format!("published v{}: {}", draft.version, draft.text))
    }

    #[step(after = review, exit)]
    pub async fn give_up(
        ctx: &Ctx<Deps>,
        exhausted: LoopExhausted<Draft>,
    ) -> Result<String, Never> {
        ctx.deps().give_ups.fetch_add(1, Ordering::SeqCst);
        Ok(format!(
            "gave up after {} revisions at v{}",
            exhausted.iterations, exhausted.last.version
        ))
    }
}

/// An unbounded back-edge: allowed, because `check` can leave the loop.
#[workflow]
pub mod countdown {
    use super::*;

    pub enum Next {
        #[to(tick)]
        Again(u32),
        Stop(u32),
    }

    #[step(entry)]
    pub async fn start(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = start)]
    pub async fn tick(n: u32) -> Result<u32, Never> {
        Ok(n.saturating_sub(1))
    }

    #[step(after = tick, routes = Next)]
    pub async fn check(n: u32) -> Result<Next, Never> {
        Ok(if n == 0 {
            Next::Stop(n)
        } else {
            Next::Again(n)
        })
    }

    #[step(after = check, exit)]
    pub async fn stop(n: u32) -> Result<String, Never> {
        Ok(format!("stopped at {n}"))
    }
}

/// Two bounded loops on one route step, each with its own counter. The input is a script:
/// `choose` takes its first letter, `L` to go back to `left`, `R` to go back to `right`.
#[workflow]
pub mod two {
    use super::*;

    pub enum Choice {
        #[to(left, max = 1, exhausted = done_left)]
        Left(String),
        #[to(right, max = 2, exhausted = done_right)]
        Right(String),
        End(String),
    }

    #[step(entry)]
    pub async fn left(script: String) -> Result<String, Never> {
        Ok(script)
    }

    #[step(after = left)]
    pub async fn right(script: String) -> Result<String, Never> {
        Ok(script)
    }

    #[step(after = right, routes = Choice)]
    pub async fn choose(script: String) -> Result<Choice, Never> {
        let rest = script.get(1..).unwrap_or_default().to_owned();
        Ok(match script.chars().next() {
            Some('L') => Choice::Left(rest),
            Some('R') => Choice::Right(rest),
            _ => Choice::End(script),
        })
    }

    #[step(after = choose, exit)]
    pub async fn done_left(e: LoopExhausted<String>) -> Result<String, Never> {
        Ok(format!(
            "left exhausted after {}, left {:?}",
            e.iterations, e.last
        ))
    }

    #[step(after = choose, exit)]
    pub async fn done_right(e: LoopExhausted<String>) -> Result<String, Never> {
        Ok(format!(
            "right exhausted after {}, left {:?}",
            e.iterations, e.last
        ))
    }

    #[step(after = choose, exit)]
    pub async fn end(script: String) -> Result<String, Never> {
        Ok(format!("end {script:?}"))
    }
}

/// A loop around a fan-out: the counter travels through the fan-out's state.
#[workflow]
pub mod around {
    use super::*;

    pub enum Judged {
        #[to(fork, max = 2, exhausted = enough)]
        More(u32),
        Fine(u32),
    }

    #[step(entry)]
    pub async fn fork(n: u32) -> Result<u32, Never> {
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn plus(n: u32) -> Result<u32, Never> {
        Ok(n + 1)
    }

    #[step(after = fork)]
    pub async fn times(n: u32) -> Result<u32, Never> {
        Ok(n * 2)
    }

    #[step(after = [plus, times])]
    pub async fn join(plus: u32, times: u32) -> Result<u32, Never> {
        Ok(plus + times)
    }

    #[step(after = join, routes = Judged)]
    pub async fn judge(n: u32) -> Result<Judged, Never> {
        Ok(if n > 100 {
            Judged::Fine(n)
        } else {
            Judged::More(n)
        })
    }

    #[step(after = judge, exit)]
    pub async fn fine(n: u32) -> Result<String, Never> {
        Ok(format!("fine {n}"))
    }

    #[step(after = judge, exit)]
    pub async fn enough(e: LoopExhausted<u32>) -> Result<String, Never> {
        Ok(format!("enough after {}: {}", e.iterations, e.last))
    }
}

#[tokio::test]
async fn an_exhausted_loop_takes_the_exhausted_route_after_exactly_max_back_edges() {
    let ctx = Ctx::new(Deps::never());
    let out = writer::Workflow::run(&ctx, "t".into()).await.unwrap();
    // The first draft plus 3 revisions; the 4th `Revise` goes to `give_up`.
    assert_eq!(out, "gave up after 3 revisions at v4");
    assert_eq!(ctx.deps().counts(), [4, 4, 0, 1]);
}

#[tokio::test]
async fn loop_exhausted_carries_the_iterations_and_the_last_value() {
    let ctx = Ctx::new(Deps::never());
    let flow = writer::Flow::new(&ctx, "t".into()).brief().await.unwrap();
    let mut flow = flow.draft().await.unwrap();
    let mut revisions = 0;
    let exhausted = loop {
        match flow.review().await.unwrap() {
            writer::VerdictFlow::Revise(next) => {
                revisions += 1;
                assert_eq!(next.loops().review_revise, revisions);
                flow = next.draft().await.unwrap();
            }
            writer::VerdictFlow::ReviseExhausted(end) => break end,
            writer::VerdictFlow::Publish(_) => panic!("never accepts"),
        }
    };
    assert_eq!(revisions, 3);
    let input: &LoopExhausted<Draft> = exhausted.input();
    assert_eq!(input.iterations, 3);
    assert_eq!(
        input.last,
        Draft {
            text: "t++++".into(),
            version: 4
        }
    );
    assert_eq!(
        exhausted.give_up().await.unwrap(),
        "gave up after 3 revisions at v4"
    );
}

#[tokio::test]
async fn a_loop_exits_early_by_another_route() {
    let ctx = Ctx::new(Deps::accepting_at(2));
    assert_eq!(
        writer::Workflow::run(&ctx, "t".into()).await.unwrap(),
        "published v2: t++"
    );
    assert_eq!(ctx.deps().counts(), [2, 2, 1, 0]);
}

#[tokio::test]
async fn a_loop_that_accepts_at_the_last_allowed_iteration_does_not_give_up() {
    // v4 is the draft after the 3rd (last allowed) back-edge.
    let ctx = Ctx::new(Deps::accepting_at(4));
    assert_eq!(
        writer::Workflow::run(&ctx, "t".into()).await.unwrap(),
        "published v4: t++++"
    );
    assert_eq!(ctx.deps().counts(), [4, 4, 1, 0]);
}

#[tokio::test]
async fn a_loop_that_accepts_at_once_takes_no_back_edge() {
    let ctx = Ctx::new(Deps::accepting_at(1));
    assert_eq!(
        writer::Workflow::run(&ctx, "t".into()).await.unwrap(),
        "published v1: t+"
    );
    assert_eq!(ctx.deps().counts(), [1, 1, 1, 0]);
}

#[tokio::test]
async fn the_loop_counter_is_part_of_the_state() {
    let ctx = Ctx::new(Deps::never());
    let flow = writer::Flow::new(&ctx, "t".into())
        .brief()
        .await
        .unwrap()
        .draft()
        .await
        .unwrap();
    let writer::VerdictFlow::Revise(flow) = flow.review().await.unwrap() else {
        panic!("expected a revision")
    };
    let flow = flow.draft().await.unwrap();
    let state = flow.into_state();
    assert_eq!(state.loops().map(|l| l.review_revise), Some(1));

    // Resumed, the run has 2 back-edges left: 2 more drafts, then the 3rd `Revise` gives up.
    let fresh = Ctx::new(Deps::never());
    assert_eq!(
        writer::Workflow::resume(&fresh, state).await.unwrap(),
        "gave up after 3 revisions at v4"
    );
    assert_eq!(fresh.deps().counts(), [2, 3, 0, 1]);
}

#[tokio::test]
async fn a_state_with_a_spent_counter_gives_up_at_the_next_revise() {
    let loops = writer::Loops { review_revise: 3 };
    let state = writer::FlowState::Review {
        input: Draft {
            text: "x".into(),
            version: 9,
        },
        loops,
    };
    let ctx = Ctx::new(Deps::never());
    assert_eq!(
        writer::Workflow::resume(&ctx, state).await.unwrap(),
        "gave up after 3 revisions at v9"
    );
    assert_eq!(ctx.deps().counts(), [0, 1, 0, 1]);
}

#[tokio::test]
async fn an_unbounded_loop_runs_until_it_routes_out() {
    let ctx = Ctx::new(());
    assert_eq!(
        countdown::Workflow::run(&Ctx::new(()), 5).await.unwrap(),
        "stopped at 0"
    );
    assert_eq!(
        countdown::Workflow::run(&Ctx::new(()), 0).await.unwrap(),
        "stopped at 0"
    );

    let flow = countdown::Flow::new(&ctx, 2)
        .start()
        .await
        .unwrap()
        .tick()
        .await
        .unwrap();
    let countdown::NextFlow::Again(flow) = flow.check().await.unwrap() else {
        panic!("1 is not 0")
    };
    let countdown::NextFlow::Stop(flow) = flow.tick().await.unwrap().check().await.unwrap() else {
        panic!("0 stops")
    };
    assert_eq!(flow.stop().await.unwrap(), "stopped at 0");
}

#[tokio::test]
async fn each_bounded_back_edge_has_its_own_counter() {
    // A context is one run: each run gets its own.
    let run = |script: &str| {
        let script = script.to_owned();
        async move { two::Workflow::run(&Ctx::new(()), script).await }
    };
    assert_eq!(run("").await.unwrap(), "end \"\"");
    assert_eq!(run("RLR").await.unwrap(), "end \"\"");
    assert_eq!(
        run("LL").await.unwrap(),
        "left exhausted after 1, left \"\""
    );
    // Going left once does not use up the loop to the right.
    assert_eq!(
        run("LRRRx").await.unwrap(),
        "right exhausted after 2, left \"x\""
    );
    assert_eq!(
        run("RRLLR").await.unwrap(),
        "left exhausted after 1, left \"R\""
    );
}

#[tokio::test]
async fn a_loop_around_a_fan_out_counts_through_the_fan_out() {
    let ctx = Ctx::new(());
    // 1 → 2 + 2 = 4 → More → 5 + 8 = 13 → More → 14 + 26 = 40 → More: exhausted after 2.
    assert_eq!(
        around::Workflow::run(&Ctx::new(()), 1).await.unwrap(),
        "enough after 2: 40"
    );
    // 20 → 21 + 40 = 61 → More → 62 + 122 = 184 → Fine.
    assert_eq!(
        around::Workflow::run(&Ctx::new(()), 20).await.unwrap(),
        "fine 184"
    );

    let flow = around::Flow::new(&ctx, 1)
        .fork()
        .await
        .unwrap()
        .plus()
        .await
        .unwrap()
        .times()
        .await
        .unwrap();
    let around::JudgedFlow::More(flow) = flow.join().await.unwrap().judge().await.unwrap() else {
        panic!("4 is not fine")
    };
    let flow = flow.fork().await.unwrap();
    let state = flow.into_state();
    assert_eq!(state.step(), Some("join"));
    assert_eq!(state.loops().map(|l| l.judge_more), Some(1));
    assert_eq!(
        around::Workflow::resume(&ctx, state).await.unwrap(),
        "enough after 2: 40"
    );
}

#[test]
fn the_diagram_shows_the_bound_and_the_exhausted_route() {
    assert!(
        writer::MERMAID.contains("review -.->|\"Revise (max 3)\"| draft"),
        "{}",
        writer::MERMAID
    );
    assert!(
        writer::MERMAID.contains("review -->|\"Revise exhausted\"| give_up"),
        "{}",
        writer::MERMAID
    );
    assert!(
        countdown::MERMAID.contains("check -.->|Again| tick"),
        "{}",
        countdown::MERMAID
    );
}
