use flow_runtime::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Ticket(pub String);

#[workflow]
pub mod support {
    use super::*;

    #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
    pub enum Triage {
        Billing(Ticket),
        Technical(Ticket),
        Escalate(Ticket),
    }

    #[step(entry)]
    pub async fn intake(ticket: Ticket) -> Result<Triage, Failed> {
        Ok(Triage::Billing(ticket))
    }

    #[step(after = intake)]
    pub async fn billing(ticket: Ticket) -> Result<String, Failed> {
        Ok(ticket.0)
    }

    #[step(after = intake)]
    pub async fn technical(ticket: Ticket) -> Result<String, Failed> {
        Ok(ticket.0)
    }

    #[step(after = intake)]
    pub async fn escalate(ticket: Ticket) -> Result<String, Failed> {
        Ok(ticket.0)
    }

    #[step(after = billing | technical | escalate, exit)]
    pub async fn reply(text: String) -> Result<String, Failed> {
        Ok(text)
    }
}

fn main() {}
