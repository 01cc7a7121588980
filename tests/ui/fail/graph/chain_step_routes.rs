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

    pub enum Relevance {
        Summarise(String),
        Skip(String),
    }

    #[step(after = plan)]
    pub async fn search(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = search, routes = Relevance)]
    pub async fn judge(pages: String) -> Result<Relevance, Failed> {
        Ok(Relevance::Summarise(pages))
    }

    #[step(after = judge)]
    pub async fn summarise(pages: String) -> Result<u32, Failed> {
        Ok(pages.len() as u32)
    }

    #[step(after = judge, exit)]
    pub async fn skip(pages: String) -> Result<u32, Failed> {
        Ok(pages.len() as u32)
    }

    #[step(after = plan)]
    pub async fn papers(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = [summarise, papers], exit)]
    pub async fn report(web: u32, papers: u32) -> Result<u32, Failed> {
        Ok(web + papers)
    }
}

fn main() {}
