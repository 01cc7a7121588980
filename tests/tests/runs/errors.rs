//! A failing step fails the run with `FlowError::<Step>` holding its own error: `.step()`
//! names it, `Display` says so, `source()` is the step's error, and no later step runs.
//! States that no run can be in give `RuntimeError::InvalidState` instead of a panic.

use flow_runtime::error::RuntimeError;
use flow_runtime::prelude::*;
use std::error::Error as StdError;
use std::sync::Mutex;

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("not a number: {0:?}")]
    NotANumber(String),
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0} is odd")]
pub struct Odd(u32);

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("branch {0} failed")]
pub struct BranchFailed(&'static str);

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("never fails")]
pub struct Never;

#[derive(Debug, Default)]
pub struct Log(Mutex<Vec<&'static str>>);

impl Log {
    fn ran(&self, step: &'static str) {
        self.0.lock().unwrap().push(step);
    }

    fn steps(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().clone()
    }
}

#[workflow(deps = Log)]
pub mod strict {
    use super::*;

    #[step(entry)]
    pub async fn parse(ctx: &Ctx<Log>, s: String) -> Result<u32, ParseError> {
        ctx.deps().ran("parse");
        s.parse().map_err(|_| ParseError::NotANumber(s))
    }

    #[step(after = parse)]
    pub async fn even(ctx: &Ctx<Log>, n: u32) -> Result<u32, Odd> {
        ctx.deps().ran("even");
        if n.is_multiple_of(2) {
            Ok(n / 2)
        } else {
            Err(Odd(n))
        }
    }

    #[step(after = even, exit)]
    pub async fn show(ctx: &Ctx<Log>, n: u32) -> Result<String, std::fmt::Error> {
        ctx.deps().ran("show");
        if n == 0 {
            Err(std::fmt::Error)
        } else {
            Ok(n.to_string())
        }
    }
}

#[workflow(deps = Log)]
pub mod forked {
    use super::*;

    #[step(entry)]
    pub async fn fork(ctx: &Ctx<Log>, which: String) -> Result<String, Never> {
        ctx.deps().ran("fork");
        Ok(which)
    }

    #[step(after = fork)]
    pub async fn left(ctx: &Ctx<Log>, fail: String) -> Result<u32, BranchFailed> {
        ctx.deps().ran("left");
        if fail == "left" {
            Err(BranchFailed("left"))
        } else {
            Ok(1)
        }
    }

    #[step(after = fork)]
    pub async fn right(ctx: &Ctx<Log>, fail: String) -> Result<u32, BranchFailed> {
        ctx.deps().ran("right");
        if fail == "right" {
            Err(BranchFailed("right"))
        } else {
            Ok(2)
        }
    }

    #[step(after = [left, right], exit)]
    pub async fn join(ctx: &Ctx<Log>, left: u32, right: u32) -> Result<u32, Never> {
        ctx.deps().ran("join");
        Ok(left + right)
    }
}

fn assert_is_error<E: StdError + Send + Sync + 'static>() {}

#[test]
fn flow_error_is_a_real_error() {
    assert_is_error::<strict::FlowError>();
    assert_is_error::<forked::FlowError>();
    assert_is_error::<RuntimeError>();
    // Boxable as the usual `Box<dyn Error + Send + Sync>`.
    let boxed: Box<dyn StdError + Send + Sync> = Box::new(strict::FlowError::Even(Odd(3)));
    assert_eq!(boxed.to_string(), "workflow `strict`: step `even` failed");
}

#[tokio::test]
async fn a_failing_middle_step_is_named_with_its_own_error() {
    let ctx = Ctx::new(Log::default());
    let err = strict::Workflow::run(&ctx, "7".into()).await.unwrap_err();
    assert!(matches!(err, strict::FlowError::Even(Odd(7))), "{err:?}");
    assert_eq!(err.step(), Some("even"));
    assert!(err.to_string().contains("step `even` failed"), "{err}");
    assert_eq!(err.to_string(), "workflow `strict`: step `even` failed");
    let source = err.source().expect("the step's error is the source");
    assert_eq!(source.downcast_ref::<Odd>(), Some(&Odd(7)));
    assert_eq!(
        ctx.deps().steps(),
        ["parse", "even"],
        "a step after the failing one ran"
    );
}

#[tokio::test]
async fn a_failing_entry_step_is_named_with_its_own_error() {
    let ctx = Ctx::new(Log::default());
    let err = strict::Workflow::run(&ctx, "seven".into())
        .await
        .unwrap_err();
    assert_eq!(err.step(), Some("parse"));
    let strict::FlowError::Parse(inner) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*inner, ParseError::NotANumber("seven".into()));
    assert!(err.to_string().contains("step `parse` failed"), "{err}");
    assert_eq!(
        err.source().and_then(|s| s.downcast_ref::<ParseError>()),
        Some(&ParseError::NotANumber("seven".into()))
    );
    assert_eq!(ctx.deps().steps(), ["parse"]);
}

#[tokio::test]
async fn a_failing_exit_step_is_named_with_its_own_error() {
    let ctx = Ctx::new(Log::default());
    let err = strict::Workflow::run(&ctx, "0".into()).await.unwrap_err();
    assert!(
        matches!(err, strict::FlowError::Show(std::fmt::Error)),
        "{err:?}"
    );
    assert_eq!(err.step(), Some("show"));
    assert!(err.source().unwrap().is::<std::fmt::Error>());
    assert_eq!(ctx.deps().steps(), ["parse", "even", "show"]);
}

#[tokio::test]
async fn typestate_steps_fail_the_same_way() {
    let ctx = Ctx::new(Log::default());
    let flow = strict::Flow::new(&ctx, "9".into()).parse().await.unwrap();
    let err = flow.even().await.unwrap_err();
    assert!(matches!(err, strict::FlowError::Even(Odd(9))), "{err:?}");
    assert_eq!(err.step(), Some("even"));
    assert!(err.to_string().contains("step `even` failed"), "{err}");
}

#[tokio::test]
async fn a_failing_branch_is_named_and_the_join_does_not_run() {
    for branch in ["left", "right"] {
        let ctx = Ctx::new(Log::default());
        let err = forked::Workflow::run(&ctx, branch.to_owned())
            .await
            .unwrap_err();
        assert_eq!(err.step(), Some(branch));
        assert!(
            err.to_string().contains(&format!("step `{branch}` failed")),
            "{err}"
        );
        assert_eq!(
            err.source().unwrap().downcast_ref::<BranchFailed>(),
            Some(&BranchFailed(branch))
        );
        assert!(
            !ctx.deps().steps().contains(&"join"),
            "the join ran after `{branch}` failed"
        );
    }
    let ctx = Ctx::new(Log::default());
    assert_eq!(forked::Workflow::run(&ctx, String::new()).await.unwrap(), 3);
}

#[tokio::test]
async fn resuming_a_fan_out_whose_input_is_missing_is_an_invalid_state() {
    // `right` has not run, but the fan-out's output it needs is gone.
    let state = forked::FlowState::Join {
        input: None,
        left: Some(1),
        right: None,
        loops: forked::Loops::default(),
    };
    let ctx = Ctx::new(Log::default());
    let err = forked::Workflow::resume(&ctx, state).await.unwrap_err();
    let forked::FlowError::Runtime(RuntimeError::InvalidState {
        workflow,
        step,
        reason,
    }) = &err
    else {
        panic!("expected an invalid state, got {err:?}")
    };
    assert_eq!((*workflow, *step), ("forked", "join"));
    assert!(!reason.is_empty());
    assert_eq!(err.step(), None);
    assert!(err.to_string().contains("cannot resume at `join`"), "{err}");
    assert_eq!(
        ctx.deps().steps(),
        Vec::<&str>::new(),
        "a step ran from an invalid state"
    );
}

#[tokio::test]
async fn an_invalid_state_from_json_is_an_error_not_a_panic() {
    let state: forked::FlowState = serde_json::from_value(
        serde_json::json!({ "Join": { "input": null, "left": null, "right": null, "loops": {} } }),
    )
    .unwrap();
    let ctx = Ctx::new(Log::default());
    let err = forked::Workflow::resume(&ctx, state).await.unwrap_err();
    assert!(
        matches!(
            err,
            forked::FlowError::Runtime(RuntimeError::InvalidState { .. })
        ),
        "{err:?}"
    );
    assert_eq!(ctx.deps().steps(), Vec::<&str>::new());
}

#[tokio::test]
async fn a_fan_out_without_input_but_with_every_branch_done_still_joins() {
    let state = forked::FlowState::Join {
        input: None,
        left: Some(10),
        right: Some(20),
        loops: forked::Loops::default(),
    };
    let ctx = Ctx::new(Log::default());
    assert_eq!(forked::Workflow::resume(&ctx, state).await.unwrap(), 30);
    assert_eq!(ctx.deps().steps(), ["join"]);
}

#[test]
fn a_state_for_another_shape_does_not_deserialise() {
    // Unknown step, wrong field types: refused by serde, before any step runs.
    assert!(
        serde_json::from_value::<strict::FlowState>(serde_json::json!({ "Nope": { "input": 1 } }))
            .is_err()
    );
    assert!(
        serde_json::from_value::<strict::FlowState>(
            serde_json::json!({ "Even": { "input": "x", "loops": {} } })
        )
        .is_err()
    );
}

/// Step errors need not implement `std::error::Error`: a boxed error becomes the `source`,
/// and a plain message is shown in `FlowError`'s own message.
#[workflow]
pub mod loose_errors {
    /// Fails with a boxed error.
    #[step(entry)]
    pub async fn boxed(fail: bool) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        if fail {
            Err("disk full".into())
        } else {
            Ok(true)
        }
    }

    /// Fails with a `String`.
    #[step(after = boxed, exit)]
    pub async fn plain(_: bool) -> Result<u8, String> {
        Err("no luck".to_owned())
    }
}

#[tokio::test]
async fn boxed_errors_are_sources_and_plain_messages_are_shown() {
    use std::error::Error as _;
    let boxed = loose_errors::Workflow::run(&Ctx::new(()), true)
        .await
        .unwrap_err();
    assert_eq!(
        boxed.to_string(),
        "workflow `loose_errors`: step `boxed` failed"
    );
    assert_eq!(
        boxed.source().map(ToString::to_string).as_deref(),
        Some("disk full")
    );

    let plain = loose_errors::Workflow::run(&Ctx::new(()), false)
        .await
        .unwrap_err();
    assert_eq!(
        plain.to_string(),
        "workflow `loose_errors`: step `plain` failed: no luck"
    );
    assert!(plain.source().is_none());
    // `Debug` reads as a derive would write it: the variant and the step's own error.
    assert_eq!(format!("{plain:?}"), r#"Plain("no luck")"#);
    assert!(format!("{boxed:?}").starts_with("Boxed("), "{boxed:?}");
    let invalid = || RuntimeError::InvalidState {
        workflow: "loose_errors",
        step: "plain",
        reason: "a test",
    };
    let runtime = loose_errors::FlowError::from(invalid());
    assert_eq!(runtime.step(), None);
    assert_eq!(format!("{runtime:?}"), format!("Runtime({:?})", invalid()));
    assert_eq!(runtime.to_string(), invalid().to_string());
}
