use flow_runtime::prelude::*;

pub struct SearchFlights;

impl Tool for SearchFlights {
    type Input = String;
    type Output = Vec<String>;
    const NAME: &'static str = "search_flights";
    const DESCRIPTION: &'static str = "Finds flights.";

    async fn call(&self, _: &ToolCtx, input: String) -> Result<Vec<String>, ToolError> {
        Ok(vec![input])
    }
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(to: String) -> Result<String, CallError> {
        Ok(to)
    }

    #[step(after = validate, exit, tools = [SearchFlights])]
    pub async fn search(ctx: &Ctx<(), tools::SearchFlights>, to: String) -> Result<Vec<String>, CallError> {
        ctx.call::<SearchFlights>(to).await
    }
}

fn main() {}
