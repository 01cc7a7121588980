//! A chain of steps, run whole by `Workflow::run` and one step at a time by the typestate
//! `Flow`; the generated constants and the `Workflow` trait.

use flow_runtime::prelude::*;
use std::num::ParseIntError;

#[derive(Debug, thiserror::Error)]
#[error("too large: {0}")]
pub struct TooLarge(u64);

#[workflow]
pub mod chain {
    use super::*;

    #[step(entry)]
    pub async fn parse(raw: String) -> Result<u32, ParseIntError> {
        raw.trim().parse()
    }

    #[step(after = parse)]
    pub async fn square(n: u32) -> Result<u64, TooLarge> {
        let n = u64::from(n);
        if n > 1000 {
            Err(TooLarge(n))
        } else {
            Ok(n * n)
        }
    }

    #[step(after = square, exit)]
    pub async fn show(n: u64) -> Result<String, std::fmt::Error> {
        Ok(format!("= {n}"))
    }
}

#[workflow]
pub mod single {
    #[step(entry, exit)]
    pub async fn only(n: u32) -> Result<u32, std::convert::Infallible> {
        Ok(n + 1)
    }
}

#[tokio::test]
async fn run_goes_through_every_step_in_order() {
    let ctx = Ctx::new(());
    assert_eq!(
        chain::Workflow::run(&ctx, " 12 ".to_owned()).await.unwrap(),
        "= 144"
    );
}

#[tokio::test]
async fn a_single_step_that_is_entry_and_exit_runs() {
    assert_eq!(single::Workflow::run(&Ctx::new(()), 41).await.unwrap(), 42);
    assert_eq!(single::Flow::new(&Ctx::new(()), 1).only().await.unwrap(), 2);
}

#[tokio::test]
async fn typestate_runs_one_step_at_a_time_with_the_same_result() {
    let ctx = Ctx::new(());
    let flow = chain::Flow::new(&ctx, "7".to_owned());
    assert_eq!(flow.input(), "7");
    let flow = flow.parse().await.unwrap();
    assert_eq!(*flow.input(), 7_u32);
    let flow = flow.square().await.unwrap();
    assert_eq!(*flow.input(), 49_u64);
    assert_eq!(flow.show().await.unwrap(), "= 49");
}

#[tokio::test]
async fn typestate_flow_keeps_its_context() {
    let ctx = Ctx::builder(()).run_id("linear-ctx").build();
    let flow = chain::Flow::new(&ctx, "1".to_owned())
        .parse()
        .await
        .unwrap();
    assert_eq!(flow.ctx().run_id().as_str(), "linear-ctx");
}

#[tokio::test]
async fn the_workflow_trait_drives_it_generically() {
    async fn run_any<W: Workflow<Deps = ()>>(input: W::Input) -> Result<W::Output, W::Error> {
        W::run(&Ctx::new(()), input).await
    }
    assert_eq!(
        run_any::<chain::Workflow>("3".to_owned()).await.unwrap(),
        "= 9"
    );
    assert_eq!(run_any::<single::Workflow>(9).await.unwrap(), 10);
}

#[test]
fn start_is_the_entry_step_with_the_input() {
    let state = <chain::Workflow as Workflow>::start("5".to_owned());
    assert_eq!(state.step(), Some("parse"));
    assert!(!state.is_completed());
    let chain::FlowState::Parse { input, .. } = state else {
        panic!("not at `parse`: {state:?}")
    };
    assert_eq!(input, "5");
}

#[test]
fn constants_describe_the_workflow() {
    assert_eq!(chain::NAME, "chain");
    assert_eq!(<chain::Workflow as Workflow>::NAME, chain::NAME);
    assert_eq!(
        <chain::Workflow as Workflow>::STEPS,
        ["parse", "square", "show"]
    );
    assert_eq!(
        <chain::Workflow as Workflow>::FINGERPRINT,
        chain::FINGERPRINT
    );
    assert_eq!(<chain::Workflow as Workflow>::MERMAID, chain::MERMAID);
    assert!(!chain::FINGERPRINT.is_empty());
    assert_ne!(chain::FINGERPRINT, single::FINGERPRINT);
    assert!(
        chain::MERMAID.starts_with("flowchart"),
        "{}",
        chain::MERMAID
    );
    assert!(
        chain::MERMAID.contains("parse --> square"),
        "{}",
        chain::MERMAID
    );
    assert!(
        chain::MERMAID.contains("square --> show"),
        "{}",
        chain::MERMAID
    );
}

#[tokio::test]
async fn resuming_a_completed_state_returns_its_output_without_running_anything() {
    let state = chain::FlowState::Completed {
        output: "done".to_owned(),
    };
    assert!(state.is_completed());
    assert_eq!(state.step(), None);
    assert_eq!(state.loops(), None);
    assert_eq!(
        chain::Workflow::resume(&Ctx::new(()), state).await.unwrap(),
        "done"
    );
}
