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
    pub async fn search(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    // Meant as the end of the run, but `search` is a branch: its chain must end in the join.
    #[step(after = search, exit)]
    pub async fn summarise(pages: String) -> Result<u32, Failed> {
        Ok(pages.len() as u32)
    }

    #[step(after = plan)]
    pub async fn papers(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = plan)]
    pub async fn news(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = [papers, news], exit)]
    pub async fn report(papers: u32, news: u32) -> Result<u32, Failed> {
        Ok(papers + news)
    }
}

fn main() {}
