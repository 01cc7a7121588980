//! The driver's rules, on a hand-written graph table and adapters (no macro): a linear part,
//! a step that sleeps, a fan-out of two branches and their join.

use super::{
    BoxFuture, EventArg, FailedAt, Graph, Machine, Outcome, Park, Position, Resume, StepInfo,
    StepKind, StepRun, Stepped,
};
use crate::error::RuntimeError;
use crate::state::{Ctx, Wake, Workflow};
use crate::store::MemoryStore;
use crate::tool::Visit;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the steps did, in order, and whether `nap` sleeps.
#[derive(Default)]
struct Deps {
    log: Mutex<Vec<&'static str>>,
    nap: Option<Duration>,
}

impl Deps {
    fn ran(&self, step: &'static str) {
        self.log.lock().unwrap().push(step);
    }
    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// `start` → `nap` → (`left` ‖ `right`) → `join`.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum State {
    Start(u32),
    Nap(u32),
    Join {
        input: Option<u32>,
        left: Option<u32>,
        right: Option<u32>,
    },
    Done(u32),
}

enum Branch {
    Left(u32),
    Right(u32),
}

struct Hand;

impl Workflow for Hand {
    const NAME: &'static str = "hand";
    const FINGERPRINT: &'static str = "f";
    const MERMAID: &'static str = "";
    const STEPS: &'static [&'static str] = &["start", "nap", "left", "right", "join"];
    type Deps = Deps;
    type Input = u32;
    type Output = u32;
    type Error = Error;
    type State = State;

    fn start(input: u32) -> State {
        State::Start(input)
    }

    fn drive(
        ctx: &Ctx<Deps>,
        state: State,
        resume: Resume,
    ) -> impl Future<Output = Outcome<u32, Error>> + Send {
        super::drive::<Self>(ctx, state, resume)
    }

    fn output(state: State) -> Result<u32, State> {
        <Self as Machine>::finish(state)
    }

    fn failed_at(error: &Error) -> FailedAt<'_> {
        let Error::Runtime(e) = error;
        FailedAt::Runtime(e)
    }
}

const fn plain(name: &'static str, kind: StepKind) -> StepInfo {
    StepInfo {
        name,
        kind,
        exit: false,
        deliverable: true,
        wait: None,
        sleeps: false,
    }
}

impl Machine for Hand {
    const GRAPH: Graph = Graph {
        workflow: "hand",
        fingerprint: "f",
        entry: 0,
        steps: &[
            StepInfo::new("start", StepKind::Plain),
            StepInfo {
                sleeps: true,
                ..plain("nap", StepKind::Plain)
            },
            plain("left", StepKind::Branch { join: 4 }),
            plain("right", StepKind::Branch { join: 4 }),
            StepInfo {
                exit: true,
                ..plain("join", StepKind::Join { branches: &[2, 3] })
            },
        ],
    };
    type Branch = Branch;

    fn position(state: &State) -> Position {
        let visit = Visit::FIRST;
        match state {
            State::Start(_) => Position::Step { step: 0, visit },
            State::Nap(_) => Position::Step { step: 1, visit },
            State::Join { left, right, .. } => Position::Join {
                step: 4,
                visit,
                pending: [(2, left.is_none()), (3, right.is_none())]
                    .into_iter()
                    .filter_map(|(b, p)| p.then_some(b))
                    .collect(),
            },
            State::Done(_) => Position::Finished,
        }
    }

    fn step(
        ctx: &Ctx<Deps>,
        run: StepRun,
        state: State,
        _: Option<EventArg>,
    ) -> BoxFuture<'_, Result<Stepped<State>, Error>> {
        Box::pin(async move {
            ctx.deps().ran(run.name);
            Ok(match state {
                State::Start(n) => Stepped::new(State::Nap(n + 1), None, None),
                State::Nap(n) => Stepped::new(
                    State::Join {
                        input: Some(n),
                        left: None,
                        right: None,
                    },
                    None,
                    ctx.deps().nap.map(Wake::After),
                ),
                State::Join {
                    left: Some(l),
                    right: Some(r),
                    ..
                } => Stepped::new(State::Done(l + r), None, None),
                _ => {
                    return Err(RuntimeError::InvalidState {
                        workflow: "hand",
                        step: run.name,
                        reason: "not here",
                    }
                    .into());
                }
            })
        })
    }

    fn branch<'a>(
        ctx: &'a Ctx<Deps>,
        run: StepRun,
        state: &State,
    ) -> BoxFuture<'a, Result<Stepped<Branch>, Error>> {
        let input = match state {
            State::Join { input, .. } => *input,
            _ => None,
        };
        Box::pin(async move {
            ctx.deps().ran(run.name);
            let n = input.ok_or(RuntimeError::InvalidState {
                workflow: "hand",
                step: run.name,
                reason: "no input",
            })?;
            let out = if run.step == 2 {
                Branch::Left(n * 10)
            } else {
                Branch::Right(n * 100)
            };
            Ok(Stepped::new(out, None, None))
        })
    }

    fn merge(state: &mut State, out: Branch) -> Result<(), RuntimeError> {
        let State::Join { input, left, right } = state else {
            return Err(RuntimeError::InvalidState {
                workflow: "hand",
                step: "join",
                reason: "not at the join",
            });
        };
        match out {
            Branch::Left(v) => *left = Some(v),
            Branch::Right(v) => *right = Some(v),
        }
        if left.is_some() && right.is_some() {
            *input = None;
        }
        Ok(())
    }

    fn finish(state: State) -> Result<u32, State> {
        match state {
            State::Done(n) => Ok(n),
            state => Err(state),
        }
    }
}

#[tokio::test]
async fn the_driver_runs_steps_then_branches_then_the_join() {
    let ctx = Ctx::new(Deps::default());
    let outcome = Hand::advance(&ctx, Hand::start(1)).await;
    assert!(matches!(outcome, Outcome::Finished(220)), "{outcome:?}");
    let log = ctx.deps().log();
    assert_eq!(&log[..2], ["start", "nap"]);
    assert_eq!(log[4], "join");
}

#[tokio::test]
async fn a_checkpoint_follows_every_step_and_every_branch() {
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(Deps::default())
        .run_id("r")
        .store(Arc::clone(&store))
        .build();
    assert_eq!(Hand::run(&ctx, 1).await.unwrap(), 220);
    let history = store.history(&"r".into());
    // The run's start, stored before its first step.
    assert_eq!(history[0].step, "");
    let history = &history[1..];
    let steps: Vec<_> = history.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert_eq!(&steps[..2], ["start", "nap"]);
    assert_eq!(steps[4], "join");
    assert!(history[4].finished);
    // The checkpoint after the first branch holds its output and the fork's input; after
    // the second, the input is dropped.
    let after_one: State = serde_json::from_value(history[2].state.clone()).unwrap();
    assert!(
        matches!(after_one, State::Join { input: Some(2), .. }),
        "{after_one:?}"
    );
    let after_both: State = serde_json::from_value(history[3].state.clone()).unwrap();
    assert_eq!(
        after_both,
        State::Join {
            input: None,
            left: Some(20),
            right: Some(200)
        }
    );
}

#[tokio::test]
async fn a_sleep_with_a_store_parks_the_run_as_a_value() {
    let store = Arc::new(MemoryStore::new());
    let deps = Deps {
        nap: Some(Duration::from_hours(1)),
        ..Deps::default()
    };
    let ctx = Ctx::builder(deps).run_id("r").store(store).build();
    let outcome = Hand::advance(&ctx, Hand::start(1)).await;
    let Outcome::Parked(Park::Sleeping { step, until }) = outcome else {
        panic!("expected a parked run, got {outcome:?}")
    };
    assert_eq!(step, "nap");
    assert!(until > crate::state::now());
    assert_eq!(ctx.deps().log(), ["start", "nap"]);
    // `run` keeps its `Result`: the same park as `RuntimeError::Parked`.
    let deps = Deps {
        nap: Some(Duration::from_hours(1)),
        ..Deps::default()
    };
    let ctx = Ctx::builder(deps)
        .run_id("s")
        .store(Arc::new(MemoryStore::new()))
        .build();
    let error = Hand::run(&ctx, 1).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Runtime(RuntimeError::Parked {
                step: "nap",
                event: None,
                ..
            })
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sleep_without_a_store_sleeps_in_the_driver() {
    let deps = Deps {
        nap: Some(Duration::from_mins(1)),
        ..Deps::default()
    };
    let ctx = Ctx::new(deps);
    let started = tokio::time::Instant::now();
    assert!(matches!(
        Hand::advance(&ctx, State::Nap(1)).await,
        Outcome::Finished(110)
    ));
    assert!(started.elapsed() >= Duration::from_mins(1));
}

#[tokio::test]
async fn resuming_a_half_done_fan_out_runs_only_the_pending_branch_at_the_stored_attempt() {
    let ctx = Ctx::new(Deps::default());
    let state = State::Join {
        input: Some(3),
        left: Some(30),
        right: None,
    };
    let resume = Resume {
        attempt: Some(2),
        ..Resume::default()
    };
    let outcome = Hand::drive(&ctx, state, resume).await;
    assert!(matches!(outcome, Outcome::Finished(330)), "{outcome:?}");
    assert_eq!(ctx.deps().log(), ["right", "join"]);
}

#[tokio::test]
async fn a_run_without_its_branch_input_fails_with_an_invalid_state() {
    let ctx = Ctx::new(Deps::default());
    let state = State::Join {
        input: None,
        left: None,
        right: Some(1),
    };
    let outcome = Hand::advance(&ctx, state).await;
    assert!(
        matches!(
            outcome,
            Outcome::Failed(Error::Runtime(RuntimeError::InvalidState { .. }))
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_paused_run_ends_as_stopped_and_a_new_one_as_finished() {
    use crate::store::{RunControl, RunStatus};
    let store = Arc::new(MemoryStore::new());
    let deps = Deps {
        nap: Some(Duration::from_hours(1)),
        ..Deps::default()
    };
    let ctx = Ctx::builder(deps)
        .run_id("p")
        .store(Arc::clone(&store))
        .build();
    assert!(matches!(
        Hand::advance_or_start(&ctx, 1).await,
        Outcome::Parked(Park::Sleeping { step: "nap", .. })
    ));
    store.pause(&"p".into()).await.unwrap();
    let outcome = Hand::advance_or_start(&ctx, 1).await;
    assert!(
        matches!(
            outcome,
            Outcome::Stopped {
                step: None,
                status: RunStatus::Paused
            }
        ),
        "{outcome:?}"
    );
    let fresh = Ctx::builder(Deps::default())
        .run_id("q")
        .store(store)
        .build();
    assert!(matches!(
        Hand::advance_or_start(&fresh, 1).await,
        Outcome::Finished(220)
    ));
}

/// What the steps of [`Chained`] did: each step with its attempt, in order.
#[derive(Default)]
struct ChainDeps {
    log: Mutex<Vec<(&'static str, u32)>>,
}

impl ChainDeps {
    fn log(&self) -> Vec<(&'static str, u32)> {
        self.log.lock().unwrap().clone()
    }
}

/// `start` → (`a1` → `a2`) ‖ `b` → `join`: a branch that is a chain of two steps beside one of
/// one step. The join's state keeps each branch's latest output. A fork output of 0 makes
/// `a1` return 0, which `merge` drops (a broken machine whose position never moves past `a1`).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Chain {
    Start(u32),
    Join {
        input: Option<u32>,
        a1: Option<u32>,
        a2: Option<u32>,
        b: Option<u32>,
    },
    Done(u32),
}

enum Link {
    A1(u32),
    A2(u32),
    B(u32),
}

struct Chained;

impl Workflow for Chained {
    const NAME: &'static str = "chained";
    const FINGERPRINT: &'static str = "c";
    const MERMAID: &'static str = "";
    const STEPS: &'static [&'static str] = &["start", "a1", "a2", "b", "join"];
    type Deps = ChainDeps;
    type Input = u32;
    type Output = u32;
    type Error = Error;
    type State = Chain;

    fn start(input: u32) -> Chain {
        Chain::Start(input)
    }

    fn drive(
        ctx: &Ctx<ChainDeps>,
        state: Chain,
        resume: Resume,
    ) -> impl Future<Output = Outcome<u32, Error>> + Send {
        super::drive::<Self>(ctx, state, resume)
    }

    fn output(state: Chain) -> Result<u32, Chain> {
        <Self as Machine>::finish(state)
    }

    fn failed_at(error: &Error) -> FailedAt<'_> {
        let Error::Runtime(e) = error;
        FailedAt::Runtime(e)
    }
}

fn not_here(step: &'static str) -> RuntimeError {
    RuntimeError::InvalidState {
        workflow: "chained",
        step,
        reason: "not here",
    }
}

impl Machine for Chained {
    const GRAPH: Graph = Graph {
        workflow: "chained",
        fingerprint: "c",
        entry: 0,
        steps: &[
            StepInfo::new("start", StepKind::Plain),
            StepInfo::new("a1", StepKind::Branch { join: 4 }),
            StepInfo::new("a2", StepKind::Branch { join: 4 }),
            StepInfo::new("b", StepKind::Branch { join: 4 }),
            StepInfo::new("join", StepKind::Join { branches: &[2, 3] }).exit(),
        ],
    };
    type Branch = Link;

    fn position(state: &Chain) -> Position {
        let visit = Visit::FIRST;
        match state {
            Chain::Start(_) => Position::Step { step: 0, visit },
            Chain::Join { a1, a2, b, .. } => {
                let a = if a2.is_some() {
                    None
                } else if a1.is_some() {
                    Some(2)
                } else {
                    Some(1)
                };
                Position::Join {
                    step: 4,
                    visit,
                    pending: [a, b.is_none().then_some(3)]
                        .into_iter()
                        .flatten()
                        .collect(),
                }
            }
            Chain::Done(_) => Position::Finished,
        }
    }

    fn step(
        ctx: &Ctx<ChainDeps>,
        run: StepRun,
        state: Chain,
        _: Option<EventArg>,
    ) -> BoxFuture<'_, Result<Stepped<Chain>, Error>> {
        Box::pin(async move {
            ctx.deps().log.lock().unwrap().push((run.name, run.attempt));
            Ok(match state {
                Chain::Start(n) => Stepped::new(
                    Chain::Join {
                        input: Some(n + 1),
                        a1: None,
                        a2: None,
                        b: None,
                    },
                    None,
                    None,
                ),
                Chain::Join {
                    a2: Some(a),
                    b: Some(b),
                    ..
                } => Stepped::new(Chain::Done(a + b), None, None),
                _ => return Err(not_here(run.name).into()),
            })
        })
    }

    fn branch<'a>(
        ctx: &'a Ctx<ChainDeps>,
        run: StepRun,
        state: &Chain,
    ) -> BoxFuture<'a, Result<Stepped<Link>, Error>> {
        let Chain::Join { input, a1, .. } = state else {
            return Box::pin(async move { Err(not_here(run.name).into()) });
        };
        let (input, a1) = (*input, *a1);
        Box::pin(async move {
            ctx.deps().log.lock().unwrap().push((run.name, run.attempt));
            let out = match (run.step, input, a1) {
                (1, Some(0), _) => Link::A1(0),
                (1, Some(n), _) => Link::A1(n + 1),
                (2, _, Some(a)) => Link::A2(a * 10),
                (3, Some(n), _) => Link::B(n * 100),
                _ => return Err(not_here(run.name).into()),
            };
            Ok(Stepped::new(out, None, None))
        })
    }

    fn merge(state: &mut Chain, out: Link) -> Result<(), RuntimeError> {
        let Chain::Join { input, a1, a2, b } = state else {
            return Err(not_here("join"));
        };
        match out {
            Link::A1(0) => {}
            Link::A1(v) => *a1 = Some(v),
            Link::A2(v) => {
                *a2 = Some(v);
                *a1 = None;
            }
            Link::B(v) => *b = Some(v),
        }
        if (a1.is_some() || a2.is_some()) && b.is_some() {
            *input = None;
        }
        Ok(())
    }

    fn finish(state: Chain) -> Result<u32, Chain> {
        match state {
            Chain::Done(n) => Ok(n),
            state => Err(state),
        }
    }
}

#[tokio::test]
async fn a_chain_goes_on_at_its_next_step_and_every_step_is_checkpointed() {
    let store = Arc::new(MemoryStore::new());
    let ctx = Ctx::builder(ChainDeps::default())
        .run_id("r")
        .store(Arc::clone(&store))
        .build();
    // start: 1 → 2; a1: 3, a2: 30; b: 200; join: 230.
    assert_eq!(Chained::run(&ctx, 1).await.unwrap(), 230);
    let history = store.history(&"r".into());
    assert_eq!(history[0].step, "", "the run's start comes first");
    let history = &history[1..];
    let steps: Vec<_> = history.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps.len(), 5, "{steps:?}");
    assert_eq!((steps[0], steps[4]), ("start", "join"));
    let at = |s: &str| steps.iter().position(|x| *x == s).unwrap();
    assert!(at("a1") < at("a2"), "{steps:?}");
    // After `a2`, the chain keeps only its last output.
    let after_a2: Chain = serde_json::from_value(history[at("a2")].state.clone()).unwrap();
    assert!(
        matches!(
            after_a2,
            Chain::Join {
                a1: None,
                a2: Some(30),
                ..
            }
        ),
        "{after_a2:?}"
    );
}

#[tokio::test]
async fn resuming_mid_chain_runs_the_rest_and_only_the_first_steps_count_the_stored_attempt() {
    let ctx = Ctx::new(ChainDeps::default());
    let state = Chain::Join {
        input: Some(2),
        a1: None,
        a2: None,
        b: Some(200),
    };
    let resume = Resume {
        attempt: Some(2),
        ..Resume::default()
    };
    let outcome = Chained::drive(&ctx, state, resume).await;
    assert!(matches!(outcome, Outcome::Finished(230)), "{outcome:?}");
    assert_eq!(ctx.deps().log(), [("a1", 2), ("a2", 1), ("join", 1)]);

    let ctx = Ctx::new(ChainDeps::default());
    let state = Chain::Join {
        input: Some(2),
        a1: Some(3),
        a2: None,
        b: None,
    };
    let outcome = Chained::advance(&ctx, state).await;
    assert!(matches!(outcome, Outcome::Finished(230)), "{outcome:?}");
    let mut log = ctx.deps().log();
    log.sort_unstable();
    assert_eq!(log, [("a2", 1), ("b", 1), ("join", 1)]);
}

#[tokio::test]
async fn a_state_whose_branch_does_not_move_on_fails_instead_of_running_the_step_again() {
    let ctx = Ctx::new(ChainDeps::default());
    let state = Chain::Join {
        input: Some(0),
        a1: None,
        a2: None,
        b: None,
    };
    let outcome = Chained::advance(&ctx, state).await;
    assert!(
        matches!(
            outcome,
            Outcome::Failed(Error::Runtime(RuntimeError::InvalidState { .. }))
        ),
        "{outcome:?}"
    );
    let a1 = ctx.deps().log().iter().filter(|(s, _)| *s == "a1").count();
    assert_eq!(a1, 1);
}
