use flow_runtime::prelude::*;

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

    #[step(entry, exit, tools = [Lookup, Refund], approve = [Refund])]
    pub async fn resolve(ctx: &Ctx<(), tools::Resolve>, amount: u32) -> Result<String, CallError> {
        let approved = ctx.approval::<Refund>(amount).await?;
        ctx.call_approved(approved).await
    }
}

fn main() {}
