use flow_runtime::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The raw request, checked by garde's rules.
#[derive(Clone, Debug, Serialize, Deserialize, garde::Validate)]
pub struct Trip {
    #[garde(length(min = 3, max = 3))]
    pub to: String,
    #[garde(range(min = 1, max = 9))]
    pub seats: u8,
}

/// A tool's input: its JSON Schema is what a model sees.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Query {
    pub to: String,
    pub seats: u8,
}

/// A tool: here a stand-in for an airline's API.
pub struct SearchFlights;

impl Tool for SearchFlights {
    type Input = Query;
    type Output = Vec<String>;
    const NAME: &'static str = "search_flights";
    const DESCRIPTION: &'static str = "Flights with free seats to an airport.";

    async fn call(&self, _ctx: &ToolCtx, q: Query) -> Result<Vec<String>, ToolError> {
        Ok(vec![format!("LH 2466 to {}, {} seats", q.to, q.seats)])
    }
}

#[workflow]
pub mod trip {
    use super::*;

    #[step(entry)]
    pub async fn validate(trip: Trip) -> Result<Valid<Trip>, Invalid> {
        Valid::new(trip)
    }

    #[step(after = validate, exit, tools = [SearchFlights])]
    pub async fn search(
        ctx: &Ctx<(), tools::Search>,
        trip: Valid<Trip>,
    ) -> Result<Vec<String>, CallError> {
        let query = Query {
            to: trip.to.clone(),
            seats: trip.seats,
        };
        ctx.call::<SearchFlights>(query).await
    }
}

#[tokio::main]
async fn main() -> Result<(), trip::FlowError> {
    let tools = Toolbox::new().with(PolicyTool::new(SearchFlights, ToolPolicy::default()));
    let ctx = Ctx::builder(())
        .store(Arc::new(MemoryStore::new()))
        .tools(tools)
        .build();
    let offers = trip::Workflow::run(
        &ctx,
        Trip {
            to: "OSL".into(),
            seats: 2,
        },
    )
    .await?;
    println!("{offers:?}");
    Ok(())
}
