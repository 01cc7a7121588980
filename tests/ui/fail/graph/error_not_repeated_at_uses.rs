use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

use std::sync::Arc;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[derive(Clone)]
pub struct Deps;

#[workflow(deps = Deps)]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(amount: u32) -> Result<u32, Failed> {
        Ok(amount)
    }

    #[step(after = sumbit, exit, event = Approval, timeout = std::time::Duration::from_secs(60))]
    pub async fn decide(amount: u32, approval: Event<Approval>) -> Result<u32, Failed> {
        Ok(approval.received().map_or(0, |_| amount))
    }
}

async fn drive() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let engine = flow_runtime::state::Engine::builder(Arc::clone(&store))
        .register::<expense::Workflow>(flow_runtime::state::Setup::new(Deps))
        .build();
    let run = engine.start::<expense::Workflow>("exp-1", 10).await?;
    engine
        .send::<expense::Workflow, _>(&run, Approval { by: "Grace".into() })
        .await?;
    let ctx = Ctx::new(Deps);
    let amount: u32 = expense::Workflow::run(&ctx, 10).await?;
    let _ = amount + 1;
    let flow = expense::Flow::new(&ctx, 10);
    let _ = flow.submit().await?;
    Ok(())
}

fn main() {
    let _ = drive();
}

pub fn describe(e: &expense::FlowError) -> &'static str {
    match e {
        expense::FlowError::Submit(_) | expense::FlowError::Decide(_) => "step",
        expense::FlowError::Runtime(_) => "runtime",
    }
}
