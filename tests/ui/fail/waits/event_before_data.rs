use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Claim(pub u32);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
}

#[workflow]
pub mod expense {
    use super::*;

    #[step(entry)]
    pub async fn submit(claim: Claim) -> Result<Claim, Failed> {
        Ok(claim)
    }

    #[step(after = submit, exit, event = Approval, timeout = std::time::Duration::from_secs(60))]
    pub async fn decide(approval: Event<Approval>, claim: Claim) -> Result<u32, Failed> {
        Ok(approval.received().map_or(0, |_| claim.0))
    }
}

fn main() {}
