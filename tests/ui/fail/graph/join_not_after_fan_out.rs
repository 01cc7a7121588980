use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod support {
    use super::*;

    pub enum Triage {
        Billing(String),
        Tech(String),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(Triage::Billing(text))
    }

    #[step(after = intake)]
    pub async fn billing(ticket: String) -> Result<String, Failed> {
        Ok(ticket)
    }

    #[step(after = intake)]
    pub async fn tech(ticket: String) -> Result<String, Failed> {
        Ok(ticket)
    }

    #[step(after = [billing, tech], exit)]
    pub async fn reply(billing: String, tech: String) -> Result<String, Failed> {
        Ok(billing + &tech)
    }
}

fn main() {}
