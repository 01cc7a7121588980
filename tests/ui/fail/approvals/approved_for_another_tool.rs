use flow_runtime::prelude::*;
use std::time::Duration;

pub struct Lookup;

impl Tool for Lookup {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "lookup";
    const DESCRIPTION: &'static str = "Looks an order up.";

    async fn call(&self, _: &ToolCtx, input: String) -> Result<String, ToolError> {
        Ok(input)
    }
}

pub struct Refund;

impl Tool for Refund {
    type Input = u32;
    type Output = String;
    const NAME: &'static str = "refund";
    const DESCRIPTION: &'static str = "Refunds an amount.";

    async fn call(&self, _: &ToolCtx, amount: u32) -> Result<String, ToolError> {
        Ok(format!("refunded {amount}"))
    }
}

pub struct Cancel;

impl Tool for Cancel {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "cancel";
    const DESCRIPTION: &'static str = "Cancels an order.";

    async fn call(&self, _: &ToolCtx, order: String) -> Result<String, ToolError> {
        Ok(order)
    }
}

#[workflow]
pub mod support {
    use super::*;

    #[step(entry, exit, tools = [Refund, Cancel], approve = [Refund, Cancel], timeout = Duration::from_secs(60))]
    pub async fn resolve(ctx: &Ctx<(), tools::Resolve>, order: String) -> Result<String, CallError> {
        let approved = ctx.approval::<Cancel>(order).await?;
        ctx.call_approved::<Refund>(approved).await
    }
}

fn main() {}
