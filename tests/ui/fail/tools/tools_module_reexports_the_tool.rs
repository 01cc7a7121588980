use flow_runtime::prelude::*;

pub struct Search;

impl Tool for Search {
    type Input = String;
    type Output = Vec<String>;
    const NAME: &'static str = "search";
    const DESCRIPTION: &'static str = "Finds flights.";

    async fn call(&self, _: &ToolCtx, input: String) -> Result<Vec<String>, ToolError> {
        Ok(vec![input])
    }
}

#[workflow]
pub mod trip {
    use super::*;

    pub mod tools { pub use crate::Search; }

    #[step(entry, exit, tools = [Search])]
    pub async fn search(ctx: &Ctx<(), tools::Search>, to: String) -> Result<Vec<String>, CallError> {
        ctx.call::<Search>(to).await
    }
}

fn main() {}
