use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod research {
    use super::*;

    pub enum Source {
        Ranked(u32),
    }

    #[step(entry)]
    pub async fn plan(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = plan, routes = Source)]
    pub async fn web(topic: String) -> Result<Source, Failed> {
        Ok(Source::Ranked(topic.len() as u32))
    }

    #[step(after = web)]
    pub async fn ranked(score: u32) -> Result<u32, Failed> {
        Ok(score)
    }

    #[step(after = plan)]
    pub async fn papers(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = [ranked, papers], exit)]
    pub async fn summarize(web: u32, papers: u32) -> Result<u32, Failed> {
        Ok(web + papers)
    }
}

fn main() {}
