use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod support {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Triage {
        pub billing: bool,
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(Triage { billing: text.contains("bill") })
    }

    #[step(after = intake, exit)]
    pub async fn billing(t: Triage) -> Result<String, Failed> {
        Ok(format!("{t:?}"))
    }
}

fn main() {}
