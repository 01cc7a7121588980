use flow_runtime::prelude::*;

pub mod api {
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
}

pub struct Deps {
    pub tenant: String,
}

#[workflow(deps = Deps)]
pub mod trip {
    use super::*;

    // Tools named by path; a per-tenant rate key.
    #[step(entry, tools = [api::Search, crate::api::Book])]
    pub async fn search(ctx: &Ctx<Deps, tools::Search>, to: String) -> Result<String, CallError> {
        let flights = ctx.call_for::<api::Search>(&ctx.deps().tenant, to).await?;
        ctx.call::<api::Book>(flights[0].clone()).await
    }

    #[step(after = search, exit)]
    pub async fn done(ctx: &Ctx<Deps>, pnr: String) -> Result<String, CallError> {
        Ok(format!("{pnr} for {}", ctx.deps().tenant))
    }
}

// The future of a step that calls tools is `Send`.
fn assert_send<T: Send>(_: T) {}

fn main() {
    let ctx = Ctx::new(Deps { tenant: "acme".into() });
    assert_send(trip::Workflow::run(&ctx, "Oslo".into()));
}
