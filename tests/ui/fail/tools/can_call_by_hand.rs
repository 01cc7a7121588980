use flow_runtime::prelude::*;
use flow_runtime::tool::CanCall;

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

pub struct Book;

impl Tool for Book {
    type Input = String;
    type Output = String;
    const NAME: &'static str = "book";
    const DESCRIPTION: &'static str = "Books a flight.";

    async fn call(&self, _: &ToolCtx, input: String) -> Result<String, ToolError> {
        Ok(input)
    }
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry, exit, tools = [Search])]
    pub async fn search(ctx: &Ctx<(), tools::Search>, to: String) -> Result<String, CallError> {
        let flights = ctx.call::<Search>(to).await?;
        ctx.call::<Book>(flights[0].clone()).await
    }
}

// Letting `search` call `Book` behind the workflow's back: the run would never check that its
// toolbox has `Book`.
impl CanCall<Book> for trip::tools::Search {}

fn main() {}
