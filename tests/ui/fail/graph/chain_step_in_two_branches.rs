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
    pub async fn search_web(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = plan)]
    pub async fn search_papers(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    // One summariser for both branches: each branch needs its own step.
    #[step(after = search_web | search_papers)]
    pub async fn summarise(pages: String) -> Result<u32, Failed> {
        Ok(pages.len() as u32)
    }

    #[step(after = [summarise], exit)]
    pub async fn report(n: u32) -> Result<u32, Failed> {
        Ok(n)
    }
}

fn main() {}
