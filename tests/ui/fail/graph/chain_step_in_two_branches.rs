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

    #[step(after = search_web)]
    pub async fn clean_web(pages: String) -> Result<String, Failed> {
        Ok(pages)
    }

    #[step(after = search_papers)]
    pub async fn clean_papers(pages: String) -> Result<String, Failed> {
        Ok(pages)
    }

    // One summariser for both branches: each branch needs its own step.
    #[step(after = clean_web | clean_papers)]
    pub async fn summarise(pages: String) -> Result<u32, Failed> {
        Ok(pages.len() as u32)
    }

    #[step(after = plan)]
    pub async fn people(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = [summarise, people], exit)]
    pub async fn report(n: u32, people: u32) -> Result<u32, Failed> {
        Ok(n + people)
    }
}

fn main() {}
