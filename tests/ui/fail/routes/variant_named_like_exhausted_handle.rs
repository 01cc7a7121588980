use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod review {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Verdict {
        #[to(draft, max = 2, exhausted = give_up)]
        Revise(String),
        #[to(give_up)]
        ReviseExhausted(LoopExhausted<String>),
        Publish(String),
    }

    #[step(entry)]
    pub async fn draft(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn judge(text: String) -> Result<Verdict, Failed> {
        Ok(Verdict::Publish(text))
    }

    #[step(after = judge, exit)]
    pub async fn publish(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = judge, exit)]
    pub async fn give_up(last: LoopExhausted<String>) -> Result<String, Failed> {
        Ok(last.last)
    }
}

fn main() {}
