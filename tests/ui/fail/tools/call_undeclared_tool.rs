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

    #[step(entry, tools = [Search])]
    pub async fn search(ctx: &Ctx<(), tools::Search>, to: String) -> Result<String, CallError> {
        let flights = ctx.call::<Search>(to).await?;
        // Booking is not this step's business: it did not declare `Book`.
        ctx.call::<Book>(flights[0].clone()).await
    }

    #[step(after = search, exit, tools = [Book])]
    pub async fn book(ctx: &Ctx<(), tools::Book>, flight: String) -> Result<String, CallError> {
        ctx.call::<Book>(flight).await
    }
}

fn main() {}
