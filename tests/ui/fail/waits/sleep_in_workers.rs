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
    pub async fn split(amounts: Vec<u32>) -> Result<Vec<u32>, Failed> {
        Ok(amounts)
    }

    #[step(after = split, workers = 4)]
    pub async fn each(amount: u32) -> Result<Sleep<u32>, Failed> {
        Ok(Sleep::new(Duration::from_secs(60), amount))
    }

    #[step(after = each, exit)]
    pub async fn total(amounts: Vec<u32>) -> Result<u32, Failed> {
        Ok(amounts.iter().sum())
    }
}

fn main() {}
