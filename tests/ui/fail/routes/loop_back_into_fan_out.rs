use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod research {
    use super::*;

    pub enum Verdict {
        #[to(web, max = 2, exhausted = give_up)]
        Again(String),
        Done(u32),
    }

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

    #[step(after = [web, papers])]
    pub async fn summarize(web: u32, papers: u32) -> Result<u32, Failed> {
        Ok(web + papers)
    }

    #[step(after = summarize, routes = Verdict)]
    pub async fn review(total: u32) -> Result<Verdict, Failed> {
        Ok(Verdict::Done(total))
    }

    #[step(after = review, exit)]
    pub async fn done(total: u32) -> Result<u32, Failed> {
        Ok(total)
    }

    #[step(after = review, exit)]
    pub async fn give_up(exhausted: LoopExhausted<String>) -> Result<u32, Failed> {
        Ok(exhausted.iterations)
    }
}

fn main() {}
