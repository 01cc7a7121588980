// A chain entry → middle → exit, run whole and driven one step at a time.
use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(req: String) -> Result<String, Failed> {
        Ok(req.trim().to_owned())
    }

    #[step(after = validate)]
    pub async fn search(trip: String) -> Result<u32, Failed> {
        Ok(trip.len() as u32)
    }

    #[step(after = search, exit)]
    pub async fn book(offers: u32) -> Result<u64, Failed> {
        Ok(u64::from(offers) * 2)
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        assert_send(trip::Workflow::run(&ctx, " LHR-JFK ".to_owned()))
            .await
            .unwrap(),
        14
    );

    // Another run, so a context of its own; `resume` below continues it.
    let ctx = Ctx::new(());
    let flow: trip::Flow<trip::state::Validate> = trip::Flow::new(&ctx, "LHR".to_owned());
    let flow: trip::Flow<trip::state::Search> = assert_send(flow.validate()).await.unwrap();
    assert_eq!(flow.input(), "LHR");
    let flow = flow.search().await.unwrap();
    let state: trip::FlowState = flow.into_state();
    assert_eq!(state.step(), Some("book"));
    let out: Result<u64, trip::FlowError> = trip::Workflow::resume(&ctx, state).await;
    assert_eq!(out.unwrap(), 6);

    let _: &str = trip::NAME;
    let _: &str = trip::MERMAID;
    let _: &str = trip::FINGERPRINT;
    assert_eq!(
        <trip::Workflow as flow_runtime::state::Workflow>::STEPS,
        ["validate", "search", "book"]
    );
}
