use flow_runtime::prelude::*;

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

    #[step(after = submit, exit, event = Approval, timeout = "24h")]
    pub async fn decide(amount: u32, approval: Event<Approval>) -> Result<u32, Failed> {
        Ok(approval.received().map_or(0, |_| amount))
    }
}

fn main() {}
