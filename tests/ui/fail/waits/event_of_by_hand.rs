use flow_runtime::prelude::*;
use flow_runtime::state::EventOf;
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

// No step of `expense` waits for a `Refund`: sending one would reach no step.
impl EventOf<expense::Workflow> for Refund {
    const NAME: &'static str = "Refund";
}

fn main() {}
