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

    // One tool by two paths: the macro cannot tell they are one type, so rustc reports the two
    // impls the macro writes per tool (its seal and `CanCall`) as conflicting: two errors for
    // one mistake, at `#[workflow]`. (Spanning those impls at the list puts a misspelt tool's
    // error twice instead; `tools_listed_twice` is the same tool written twice, one error.)
    #[step(entry, exit, tools = [Search, Book, crate::Search])]
    pub async fn search(ctx: &Ctx<(), tools::Search>, to: String) -> Result<Vec<String>, CallError> {
        ctx.call::<Search>(to).await
    }
}

fn main() {}
