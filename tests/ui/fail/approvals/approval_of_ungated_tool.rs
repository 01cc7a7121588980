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

#[workflow]
pub mod support {
    use super::*;

    #[step(entry, exit, tools = [Lookup, Refund], approve = [Refund], timeout = Duration::from_secs(60))]
    pub async fn resolve(ctx: &Ctx<(), tools::Resolve>, order: String) -> Result<String, CallError> {
        let approved = ctx.approval::<Lookup>(order).await?;
        Ok(approved.call_id().to_owned())
    }
}

fn main() {}
