// A bounded back-edge: review routes back to draft at most 2 times, then to give_up.
use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod writer {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Verdict {
        #[to(draft, max = 2, exhausted = give_up)]
        Revise(String),
        Publish(String),
    }

    #[step(entry)]
    pub async fn brief(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = brief)]
    pub async fn draft(text: String) -> Result<String, Failed> {
        Ok(format!("{text}+"))
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(text: String) -> Result<Verdict, Failed> {
        Ok(if text.ends_with("+++") {
            Verdict::Publish(text)
        } else {
            Verdict::Revise(text)
        })
    }

    #[step(after = review, exit)]
    pub async fn publish(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = review, exit)]
    pub async fn give_up(exhausted: LoopExhausted<String>) -> Result<String, Failed> {
        Ok(format!(
            "gave up after {}: {}",
            exhausted.iterations, exhausted.last
        ))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    assert_eq!(
        writer::Workflow::run(&ctx(), "a".to_owned()).await.unwrap(),
        "a+++"
    );
    assert_eq!(
        writer::Workflow::run(&ctx(), "b+++".to_owned())
            .await
            .unwrap(),
        "b++++"
    );

    let mut flow = writer::Flow::new(&ctx(), "c".to_owned())
        .brief()
        .await
        .unwrap();
    let out = loop {
        let review = flow.draft().await.unwrap();
        match review.review().await.unwrap() {
            writer::VerdictFlow::Revise(again) => flow = again,
            writer::VerdictFlow::ReviseExhausted(done) => break done.give_up().await.unwrap(),
            writer::VerdictFlow::Publish(done) => break done.publish().await.unwrap(),
        }
    };
    assert_eq!(out, "c+++");
    let _: writer::Loops = writer::Loops::default();
}
