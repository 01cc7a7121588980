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
        Billing(u32),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(Triage::Billing(text.len() as u32))
    }

    #[step(after = intake, exit)]
    pub async fn billing(ticket: String) -> Result<String, Failed> {
        Ok(ticket)
    }
}

fn main() {}
