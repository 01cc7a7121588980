//! A workflow's tool catalogue in the JSON the major model APIs accept for function calling.

use flow_runtime::tool::{Catalogue, Tool, ToolCtx, ToolError};

/// A flight search.
#[derive(Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Search {
    /// Departure airport.
    pub from: String,
    /// Arrival airport.
    pub to: String,
    /// Seats wanted.
    pub seats: Option<u8>,
}

/// What a search finds.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Offers {
    /// Prices in cents.
    pub prices: Vec<u32>,
}

/// Searches flights.
pub struct Airline;

impl Tool for Airline {
    type Input = Search;
    type Output = Offers;
    const NAME: &'static str = "search_flights";
    const DESCRIPTION: &'static str = "Finds flights between two airports.";

    async fn call(&self, _: &ToolCtx, _: Search) -> Result<Offers, ToolError> {
        Ok(Offers {
            prices: vec![36_500],
        })
    }
}

/// Cancels a booking.
pub struct Cancel;

impl Tool for Cancel {
    type Input = String;
    type Output = bool;
    const NAME: &'static str = "cancel";
    const DESCRIPTION: &'static str = "Cancels a booking by its reference.";

    async fn call(&self, _: &ToolCtx, _: String) -> Result<bool, ToolError> {
        Ok(true)
    }
}

fn catalogue() -> Catalogue {
    Catalogue::new().with::<Airline>().with::<Cancel>()
}

#[test]
fn openai_tools_are_functions_with_parameters() {
    let tools = catalogue().openai();
    assert_eq!(tools.as_array().map(Vec::len), Some(2));
    let search = &tools[0];
    assert_eq!(search["type"], "function");
    assert_eq!(search["function"]["name"], "search_flights");
    assert_eq!(
        search["function"]["description"],
        "Finds flights between two airports."
    );
    let parameters = &search["function"]["parameters"];
    assert_eq!(parameters["type"], "object");
    assert_eq!(parameters["properties"]["from"]["type"], "string");
    assert_eq!(
        parameters["properties"]["from"]["description"],
        "Departure airport."
    );
    let required: Vec<&str> = parameters["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(required, ["from", "to"], "an Option is not required");
    assert!(
        parameters.get("$schema").is_none(),
        "function-calling APIs do not take `$schema`"
    );
    assert_eq!(tools[1]["function"]["name"], "cancel");
}

#[test]
fn anthropic_and_gemini_name_the_same_schema_differently() {
    let c = catalogue();
    let anthropic = &c.anthropic()[0];
    let gemini = &c.gemini()[0];
    let openai = &c.openai()[0];
    assert_eq!(anthropic["name"], "search_flights");
    assert_eq!(anthropic["input_schema"], openai["function"]["parameters"]);
    assert_eq!(gemini["name"], "search_flights");
    assert_eq!(gemini["parameters"], openai["function"]["parameters"]);
    assert!(anthropic.get("type").is_none());
}

#[test]
fn specs_keep_both_schemas() {
    let c = catalogue();
    let spec = &c.specs()[0];
    let output = spec.output_schema.clone().to_value();
    assert_eq!(output["properties"]["prices"]["type"], "array");
}
