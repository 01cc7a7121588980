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
    pub async fn draft(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(text: String) -> Result<Verdict, Failed> {
        Ok(Verdict::Publish(text))
    }

    #[step(after = review, exit)]
    pub async fn publish(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = review, exit)]
    pub async fn give_up(exhausted: LoopExhausted<String>) -> Result<String, Failed> {
        Ok(exhausted.last)
    }
}

async fn drive() {
    let ctx = Ctx::new(());
    let flow = writer::Flow::new(&ctx, "draft".to_owned());
    let flow = flow.draft().await.unwrap();
    match flow.review().await.unwrap() {
        writer::VerdictFlow::Revise(flow) => drop(flow),
        writer::VerdictFlow::Publish(flow) => drop(flow),
    }
}

fn main() {
    let _ = drive();
}
