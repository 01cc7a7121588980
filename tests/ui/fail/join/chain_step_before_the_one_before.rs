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

    #[step(after = search)]
    pub async fn summarise(pages: String) -> Result<u32, Failed> {
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

async fn drive() {
    let ctx = Ctx::new(());
    let flow = research::Flow::new(&ctx, "rust".to_owned());
    let flow = flow.plan().await.unwrap();
    // `summarise` runs on `search`'s output: `search` first.
    let _ = flow.summarise().await;
}

fn main() {
    let _ = drive();
}
