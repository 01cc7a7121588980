use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod review {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    #[allow(non_camel_case_types)]
    pub enum Next {
        #[to(first)]
        AB(String),
        #[to(second)]
        A_b(String),
    }

    #[step(entry, routes = Next)]
    pub async fn triage(text: String) -> Result<Next, Failed> {
        Ok(Next::AB(text))
    }

    #[step(after = triage, exit)]
    pub async fn first(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = triage, exit)]
    pub async fn second(text: String) -> Result<String, Failed> {
        Ok(text)
    }
}

fn main() {}
