// A fan-out whose branches are chains: `web` searches then summarises, `papers` searches,
// ranks and summarises, `people` is one step; the join takes each branch's last output.
use flow_runtime::prelude::*;
use flow_runtime::state::{Done, Pending};

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
    pub async fn search_web(topic: String) -> Result<Vec<String>, Failed> {
        Ok(vec![format!("{topic} page")])
    }

    #[step(after = search_web)]
    pub async fn summarise_web(pages: Vec<String>) -> Result<String, Failed> {
        Ok(pages.join(","))
    }

    #[step(after = plan)]
    pub async fn search_papers(topic: String) -> Result<Vec<String>, Failed> {
        Ok(vec![topic, "old".to_owned()])
    }

    #[step(after = search_papers)]
    pub async fn rank(
        papers: Vec<String>,
        #[from(plan)] topic: &String,
    ) -> Result<Vec<String>, Failed> {
        Ok(papers.into_iter().filter(|p| p == topic).collect())
    }

    #[step(after = rank)]
    pub async fn summarise_papers(papers: Vec<String>) -> Result<usize, Failed> {
        Ok(papers.len())
    }

    #[step(after = plan)]
    pub async fn people(topic: String) -> Result<u32, Failed> {
        Ok(topic.len() as u32)
    }

    #[step(after = [summarise_web, summarise_papers, people], exit)]
    pub async fn report(web: String, papers: usize, people: u32) -> Result<String, Failed> {
        Ok(format!("{web} {papers} {people}"))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        research::Workflow::run(&ctx, "rust".to_owned())
            .await
            .unwrap(),
        "rust page 1 4"
    );

    // Each parameter of the join's marker says where its branch is.
    let flow: research::Flow<
        research::state::Report<research::state::SearchWeb, research::state::SearchPapers, Pending>,
    > = research::Flow::new(&Ctx::new(()), "ab".to_owned())
        .plan()
        .await
        .unwrap();
    let flow: research::Flow<
        research::state::Report<research::state::SearchWeb, research::state::Rank, Pending>,
    > = flow.search_papers().await.unwrap();
    let flow = flow.search_web().await.unwrap().people().await.unwrap();
    let flow = flow.rank().await.unwrap().summarise_web().await.unwrap();
    let flow: research::Flow<research::state::Report<Done, Done, Done>> =
        flow.summarise_papers().await.unwrap();
    assert_eq!(flow.report().await.unwrap(), "ab page 1 2");
}
