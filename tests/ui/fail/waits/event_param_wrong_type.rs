use flow_runtime::prelude::*;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[workflow]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(amount: u32) -> Result<u32, Failed> {
        Ok(amount)
    }

    #[step(after = submit, exit, event = Approval, timeout = Duration::from_secs(60))]
    pub async fn decide(amount: u32, approval: Approval) -> Result<u32, Failed> {
        let _ = approval;
        Ok(amount)
    }
}

fn main() {}
