use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod writer {
    use super::*;

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
    pub async fn merge(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = merge | review)]
    pub async fn draft(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(text: String) -> Result<Verdict, Failed> {
        Ok(Verdict::Revise(text))
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

fn main() {}
