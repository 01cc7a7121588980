//! What a step sees through `&Ctx<Deps>`: its name, the run id, its attempt number and the
//! user's dependencies. `Debug` of the context, of states and of flows never shows step data
//! or dependencies, which may hold credentials.

use flow_runtime::prelude::*;
use std::sync::{Arc, Mutex};

const SECRET: &str = "secret-token";

#[derive(Debug, thiserror::Error)]
#[error("context test step failed")]
pub struct Never;

/// One record per step run: (step, run id, attempt).
type Seen = (Option<&'static str>, String, u32);

pub struct Deps {
    pub api_key: String,
    pub seen: Mutex<Vec<Seen>>,
}

impl Deps {
    fn new() -> Self {
        Self {
            api_key: SECRET.to_owned(),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn record<D>(ctx: &Ctx<D>, deps: &Self) {
        deps.seen
            .lock()
            .unwrap()
            .push((ctx.step(), ctx.run_id().to_string(), ctx.attempt()));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn attempts(&self) -> Vec<(&'static str, u32)> {
        self.seen()
            .into_iter()
            .map(|(s, _, a)| (s.unwrap_or("?"), a))
            .collect()
    }
}

#[workflow(deps = Deps)]
pub mod auth {
    use super::*;

    #[step(entry)]
    pub async fn login(ctx: &Ctx<Deps>, user: String) -> Result<String, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(format!("{user}:{}", ctx.deps().api_key))
    }

    #[step(after = login)]
    pub async fn fetch(ctx: &Ctx<Deps>, session: String) -> Result<String, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(session)
    }

    #[step(after = fetch, exit)]
    pub async fn done(ctx: &Ctx<Deps>, session: String) -> Result<usize, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(session.len())
    }
}

#[workflow(deps = Deps)]
pub mod fanned {
    use super::*;

    #[step(entry)]
    pub async fn fork(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn left(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(n)
    }

    #[step(after = fork)]
    pub async fn right(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(n)
    }

    #[step(after = [left, right])]
    pub async fn join(ctx: &Ctx<Deps>, left: u32, right: u32) -> Result<Vec<u32>, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(vec![left, right])
    }

    #[step(after = join, workers = 2)]
    pub async fn each(ctx: &Ctx<Deps>, n: u32) -> Result<u32, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(n)
    }

    #[step(after = each, exit)]
    pub async fn end(ctx: &Ctx<Deps>, ns: Vec<u32>) -> Result<u32, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(ns.iter().sum())
    }
}

#[workflow(deps = Deps)]
pub mod routed {
    use super::*;

    pub enum Way {
        Short(String),
        Long(String),
    }

    #[step(entry, routes = Way)]
    pub async fn pick(ctx: &Ctx<Deps>, s: String) -> Result<Way, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(if s.len() < 5 {
            Way::Short(s)
        } else {
            Way::Long(s)
        })
    }

    #[step(after = pick, exit)]
    pub async fn short(ctx: &Ctx<Deps>, s: String) -> Result<String, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(s)
    }

    #[step(after = pick, exit)]
    pub async fn long(ctx: &Ctx<Deps>, s: String) -> Result<String, Never> {
        Deps::record(ctx, ctx.deps());
        Ok(s)
    }
}

fn ctx(first_attempt: u32) -> Ctx<Deps> {
    Ctx::builder(Deps::new())
        .run_id("r1")
        .first_attempt(first_attempt)
        .build()
}

#[tokio::test]
async fn steps_see_their_name_the_run_and_attempt_one() {
    let ctx = ctx(1);
    assert_eq!(
        auth::Workflow::run(&ctx, "ada".into()).await.unwrap(),
        "ada:secret-token".len()
    );
    assert_eq!(
        ctx.deps().seen(),
        [
            (Some("login"), "r1".to_owned(), 1),
            (Some("fetch"), "r1".to_owned(), 1),
            (Some("done"), "r1".to_owned(), 1),
        ]
    );
}

#[tokio::test]
async fn steps_reach_deps_through_the_context() {
    let ctx = Ctx::new(Deps {
        api_key: "k-123".into(),
        seen: Mutex::default(),
    });
    let flow = auth::Flow::new(&ctx, "bob".into()).login().await.unwrap();
    assert_eq!(flow.input(), "bob:k-123");
}

#[test]
fn outside_a_step_there_is_no_step_name() {
    let plain = Ctx::new(());
    assert_eq!(plain.step(), None);
    assert_eq!(plain.attempt(), 1);
    let retried = Ctx::builder(()).first_attempt(3).build();
    assert_eq!(retried.step(), None);
    assert_eq!(retried.attempt(), 3);
    assert_eq!(
        Ctx::builder(()).first_attempt(0).build().attempt(),
        1,
        "attempts count from 1"
    );
}

#[test]
fn run_ids_are_random_unless_set_and_shared_by_clones() {
    let a = Ctx::new(());
    let b = Ctx::new(());
    assert_ne!(a.run_id(), b.run_id());
    assert!(!a.run_id().as_str().is_empty());
    assert_eq!(a.clone().run_id(), a.run_id());
    let named = Ctx::builder(()).run_id(String::from("job-7")).build();
    assert_eq!(named.run_id(), &RunId::from("job-7"));
    assert_eq!(named.run_id().to_string(), "job-7");
}

#[tokio::test]
async fn only_the_first_step_of_a_resume_sees_the_first_attempt() {
    let ctx = ctx(2);
    let state = auth::FlowState::Fetch {
        input: "s".into(),
        loops: auth::Loops::default(),
    };
    auth::Workflow::resume(&ctx, state).await.unwrap();
    assert_eq!(ctx.deps().attempts(), [("fetch", 2), ("done", 1)]);
}

#[tokio::test]
async fn a_run_from_the_start_gives_the_entry_the_first_attempt() {
    let ctx = ctx(2);
    auth::Workflow::run(&ctx, "x".into()).await.unwrap();
    assert_eq!(
        ctx.deps().attempts(),
        [("login", 2), ("fetch", 1), ("done", 1)]
    );
}

#[tokio::test]
async fn a_route_target_after_the_first_attempt_sees_one() {
    let ctx = ctx(3);
    routed::Workflow::run(&ctx, "longer".into()).await.unwrap();
    assert_eq!(ctx.deps().attempts(), [("pick", 3), ("long", 1)]);
}

#[tokio::test]
async fn in_a_fan_out_every_step_sees_its_name_and_attempt_one() {
    let ctx = ctx(1);
    assert_eq!(fanned::Workflow::run(&ctx, 3).await.unwrap(), 6);
    let mut seen = ctx.deps().attempts();
    // The branches may run in any order.
    seen[1..3].sort_unstable();
    assert_eq!(
        seen,
        [
            ("fork", 1),
            ("left", 1),
            ("right", 1),
            ("join", 1),
            ("each", 1),
            ("each", 1),
            ("end", 1)
        ]
    );
    assert!(ctx.deps().seen().iter().all(|(_, run, _)| run == "r1"));
}

#[tokio::test]
async fn resuming_inside_a_fan_out_gives_the_first_attempt_to_the_pending_branch_only() {
    // `left` ran before the interruption; `right` was running. The join has not been tried.
    let state = fanned::FlowState::Join {
        input: Some(5),
        left: Some(5),
        right: None,
        loops: fanned::Loops::default(),
    };
    let ctx = ctx(2);
    assert_eq!(fanned::Workflow::resume(&ctx, state).await.unwrap(), 10);
    assert_eq!(
        ctx.deps().attempts(),
        [
            ("right", 2),
            ("join", 1),
            ("each", 1),
            ("each", 1),
            ("end", 1)
        ]
    );
}

#[tokio::test]
async fn resuming_a_finished_fan_out_gives_the_first_attempt_to_the_join() {
    let state = fanned::FlowState::Join {
        input: None,
        left: Some(1),
        right: Some(2),
        loops: fanned::Loops::default(),
    };
    let ctx = ctx(2);
    assert_eq!(fanned::Workflow::resume(&ctx, state).await.unwrap(), 3);
    assert_eq!(
        ctx.deps().attempts(),
        [("join", 2), ("each", 1), ("each", 1), ("end", 1)]
    );
}

#[tokio::test]
async fn typestate_steps_see_their_name() {
    let ctx = ctx(1);
    let flow = fanned::Flow::new(&ctx, 1).fork().await.unwrap();
    let flow = flow
        .right()
        .await
        .unwrap()
        .left()
        .await
        .unwrap()
        .join()
        .await
        .unwrap();
    assert_eq!(flow.each().await.unwrap().end().await.unwrap(), 2);
    assert_eq!(
        ctx.deps().attempts(),
        [
            ("fork", 1),
            ("right", 1),
            ("left", 1),
            ("join", 1),
            ("each", 1),
            ("each", 1),
            ("end", 1)
        ]
    );
}

#[test]
fn debug_of_ctx_leaves_out_deps() {
    let ctx = Ctx::builder(Deps::new())
        .run_id("r1")
        .store(Arc::new(MemoryStore::new()))
        .build();
    let shown = format!("{ctx:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("r1"), "{shown}");
    let builder = format!("{:?}", Ctx::builder(Deps::new()).run_id("r1"));
    assert!(!builder.contains(SECRET), "{builder}");
}

#[tokio::test]
async fn debug_of_states_and_flows_leaves_out_step_data() {
    let ctx = ctx(1);
    let state = auth::FlowState::Fetch {
        input: SECRET.into(),
        loops: auth::Loops::default(),
    };
    let shown = format!("{state:?} {state:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("fetch"), "{shown}");

    let done = auth::FlowState::Completed { output: 42 };
    assert!(!format!("{done:?}").contains("42"), "{done:?}");

    let flow = auth::Flow::new(&ctx, SECRET.into());
    let shown = format!("{flow:?} {flow:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("login"), "{shown}");

    let flow = flow.login().await.unwrap();
    let shown = format!("{flow:?}");
    assert!(!shown.contains(SECRET), "{shown}");

    // Each run below with a context of its own (a context is one run).
    let fan = fanned::Flow::new(&self::ctx(1), 4242)
        .fork()
        .await
        .unwrap()
        .left()
        .await
        .unwrap();
    let shown = format!("{fan:?}");
    let shown = format!("{shown} {:?}", fan.into_state());
    assert!(!shown.contains("4242"), "{shown}");

    let routed = routed::Flow::new(&self::ctx(1), SECRET.into())
        .pick()
        .await
        .unwrap();
    let shown = format!("{routed:?}");
    assert!(!shown.contains(SECRET), "{shown}");
}
