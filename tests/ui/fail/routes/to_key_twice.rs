use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod writer {
    use super::*;

    pub enum Verdict {
        #[to(draft, max = 3, max = 5, exhausted = publish)]
        Revise(String),
        Publish(String),
    }

    #[step(entry)]
    pub async fn brief(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = brief)]
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

}

fn main() {}
