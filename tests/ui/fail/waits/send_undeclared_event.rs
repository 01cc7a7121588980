use flow_runtime::prelude::*;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Refund {
    pub amount: u32,
}

#[workflow]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(amount: u32) -> Result<u32, Failed> {
        Ok(amount)
    }

    #[step(after = submit, exit, event = Approval, timeout = Duration::from_secs(60))]
    pub async fn decide(amount: u32, approval: Event<Approval>) -> Result<u32, Failed> {
        Ok(approval.received().map_or(0, |_| amount))
    }
}

async fn send(engine: &flow_runtime::state::Engine<MemoryStore>, run: &RunId) {
    // `expense` waits for `Approval`, not `Refund`.
    let _ = engine.send::<expense::Workflow, _>(run, Refund { amount: 3 }).await;
}

fn main() {}
