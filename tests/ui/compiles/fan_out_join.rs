// A fan-out to two branches and a join taking one parameter per branch, in `after` order.
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
    pub async fn papers(topic: String) -> Result<Vec<String>, Failed> {
        Ok(vec![topic])
    }

    #[step(after = [web, papers], exit)]
    pub async fn summarize(web: u32, papers: Vec<String>) -> Result<String, Failed> {
        Ok(format!("{web} {}", papers.join(",")))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        research::Workflow::run(&ctx, "rust".to_owned())
            .await
            .unwrap(),
        "4 rust"
    );

    // Branches in either order.
    let flow = research::Flow::new(&Ctx::new(()), "ab".to_owned())
        .plan()
        .await
        .unwrap();
    let flow = flow.papers().await.unwrap();
    let flow = flow.web().await.unwrap();
    assert_eq!(flow.summarize().await.unwrap(), "2 ab");

    let flow = research::Flow::new(&Ctx::new(()), "abc".to_owned())
        .plan()
        .await
        .unwrap();
    let flow: research::Flow<
        research::state::Summarize<flow_runtime::state::Done, flow_runtime::state::Pending>,
    > = flow.web().await.unwrap();
    let flow = flow.papers().await.unwrap();
    assert_eq!(flow.summarize().await.unwrap(), "3 abc");
}
