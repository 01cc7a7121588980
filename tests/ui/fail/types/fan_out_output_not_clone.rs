use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Serialize, Deserialize)]
pub struct Plan {
    pub topic: String,
}

#[workflow]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(topic: String) -> Result<Plan, Failed> {
        Ok(Plan { topic })
    }

    #[step(after = plan)]
    pub async fn web(plan: Plan) -> Result<u32, Failed> {
        Ok(plan.topic.len() as u32)
    }

    #[step(after = plan)]
    pub async fn papers(plan: Plan) -> Result<u32, Failed> {
        Ok(plan.topic.len() as u32)
    }

    #[step(after = [web, papers], exit)]
    pub async fn summarize(web: u32, papers: u32) -> Result<u32, Failed> {
        Ok(web + papers)
    }
}

fn main() {}
