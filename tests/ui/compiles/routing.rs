// A step that routes with an enum; the typestate handle enum is matched exhaustively.
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
        Billing(String),
        #[to(escalate)]
        Urgent(u32),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(if text.contains('!') {
            Triage::Urgent(3)
        } else {
            Triage::Billing(text)
        })
    }

    #[step(after = intake, exit)]
    pub async fn billing(ticket: String) -> Result<String, Failed> {
        Ok(format!("billing: {ticket}"))
    }

    #[step(after = intake, exit)]
    pub async fn escalate(level: u32) -> Result<String, Failed> {
        Ok(format!("escalated to level {level}"))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        support::Workflow::run(&ctx, "refund".to_owned())
            .await
            .unwrap(),
        "billing: refund"
    );

    let flow = support::Flow::new(&Ctx::new(()), "help!".to_owned());
    let out = match flow.intake().await.unwrap() {
        support::TriageFlow::Billing(flow) => flow.billing().await.unwrap(),
        support::TriageFlow::Urgent(flow) => flow.escalate().await.unwrap(),
    };
    assert_eq!(out, "escalated to level 3");
}
