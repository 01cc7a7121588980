// Two routes continue at one step (`after = order_status | escalate`), and a loop's exit and a
// route converge too; the typestate handle reaches the same step from either route.
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
        Escalate(u32),
    }

    #[step(entry, routes = Triage)]
    pub async fn intake(text: String) -> Result<Triage, Failed> {
        Ok(if text.contains('!') {
            Triage::Escalate(3)
        } else {
            Triage::OrderStatus(text)
        })
    }

    #[step(after = intake)]
    pub async fn order_status(order: String) -> Result<String, Failed> {
        Ok(format!("order {order} ships tomorrow"))
    }

    #[step(after = intake)]
    pub async fn escalate(level: u32) -> Result<String, Failed> {
        Ok(format!("escalated to level {level}"))
    }

    #[step(after = order_status | escalate, exit)]
    pub async fn draft(answer: String) -> Result<String, Failed> {
        Ok(format!("Dear customer, {answer}."))
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() {
    let ctx = Ctx::new(());
    assert_eq!(
        support::Workflow::run(&ctx, "42".to_owned()).await.unwrap(),
        "Dear customer, order 42 ships tomorrow."
    );
    let flow = support::Flow::new(&Ctx::new(()), "help!".to_owned());
    let flow = match flow.intake().await.unwrap() {
        support::TriageFlow::OrderStatus(flow) => flow.order_status().await.unwrap(),
        support::TriageFlow::Escalate(flow) => flow.escalate().await.unwrap(),
    };
    assert_eq!(
        flow.draft().await.unwrap(),
        "Dear customer, escalated to level 3."
    );
}
