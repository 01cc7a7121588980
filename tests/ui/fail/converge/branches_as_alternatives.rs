use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod research {
    use super::*;

    #[step(entry)]
    pub async fn plan(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = plan)]
    pub async fn web(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = plan)]
    pub async fn papers(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = web | papers, exit)]
    pub async fn summarize(hits: u32) -> Result<u32, Failed> {
        Ok(hits)
    }
}

fn main() {}
