// Route variants written as raw identifiers, and a variant whose step is a keyword: `r#Kind`
// leads to `kind`, `Return` to `r#return`.
use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod answer {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Next {
        Return(String),
        r#Kind(u32),
    }

    #[step(entry, routes = Next)]
    pub async fn decide(text: String) -> Result<Next, Failed> {
        Ok(match text.parse() {
            Ok(n) => Next::r#Kind(n),
            Err(_) => Next::Return(text),
        })
    }

    #[step(after = decide, exit)]
    pub async fn r#return(text: String) -> Result<String, Failed> {
        Ok(format!("returned {text}"))
    }

    #[step(after = decide, exit)]
    pub async fn kind(n: u32) -> Result<String, Failed> {
        Ok(format!("kind {n}"))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    // A context is one run: each run builds its own.
    let ctx = || Ctx::new(());
    let run = |text: &str| {
        let text = text.to_owned();
        async move { answer::Workflow::run(&ctx(), text).await }
    };
    assert_eq!(run("parcel").await.unwrap(), "returned parcel");
    assert_eq!(run("7").await.unwrap(), "kind 7");

    let flow = answer::Flow::new(&ctx(), "8".to_owned());
    let out = match flow.decide().await.unwrap() {
        answer::NextFlow::Return(flow) => flow.r#return().await.unwrap(),
        answer::NextFlow::r#Kind(flow) => flow.kind().await.unwrap(),
    };
    assert_eq!(out, "kind 8");
}
