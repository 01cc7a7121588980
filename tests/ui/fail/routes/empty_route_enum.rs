use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod support {
    use super::*;

    pub enum Triage {}

    #[step(entry, routes = Triage)]
    pub async fn intake(text: std::convert::Infallible) -> Result<Triage, Failed> {
        match text {}
    }

    #[step(after = intake, exit)]
    pub async fn billing(ticket: String) -> Result<String, Failed> {
        Ok(ticket)
    }

}

fn main() {}
