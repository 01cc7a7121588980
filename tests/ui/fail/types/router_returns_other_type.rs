use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod support {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub enum Triage {
        Billing(String),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = intake, exit)]
    pub async fn billing(ticket: String) -> Result<String, Failed> {
        Ok(ticket)
    }
}

fn main() {}
