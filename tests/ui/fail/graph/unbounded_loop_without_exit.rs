use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod writer {
    use super::*;

    pub enum Start {
        Draft(String),
        Quit(String),
    }

    pub enum Verdict {
        #[to(draft)]
        Revise(String),
    }

    #[step(entry, routes = Start)]
    pub async fn brief(topic: String) -> Result<Start, Failed> {
        Ok(Start::Draft(topic))
    }

    #[step(after = brief, exit)]
    pub async fn quit(topic: String) -> Result<String, Failed> {
        Ok(topic)
    }

    #[step(after = brief)]
    pub async fn draft(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = draft, routes = Verdict)]
    pub async fn review(text: String) -> Result<Verdict, Failed> {
        Ok(Verdict::Revise(text))
    }
}

fn main() {}
