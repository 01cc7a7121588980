use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Failed;

#[workflow]
pub mod support {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub enum Triage {
        OrderStatus(String),
        Escalate(String),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(if text.contains('!') { Triage::Escalate(text) } else { Triage::OrderStatus(text) })
    }

    #[step(after = intake)]
    pub async fn order_status(order: String) -> Result<String, Failed> {
        Ok(order)
    }

    #[step(after = intake)]
    pub async fn escalate(text: String) -> Result<String, Failed> {
        Ok(text)
    }

    #[step(after = order_status | escalate, exit)]
    pub async fn draft(answer: String, #[from(order_status)] order: &String) -> Result<String, Failed> {
        let _ = (order,);
        Ok(answer)
    }
}

fn main() {}
