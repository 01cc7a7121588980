use flow_runtime::agent::AgentError;
use flow_runtime::model::{ChatRequest, ChatResponse, Model};
use flow_runtime::prelude::*;

/// A model of one's own: any `Model` in the run's toolbox.
pub struct Local;

impl Tool for Local {
    type Input = ChatRequest;
    type Output = ChatResponse;
    const NAME: &'static str = "local";
    const DESCRIPTION: &'static str = "A local model.";

    async fn call(&self, _: &ToolCtx, _: ChatRequest) -> Result<ChatResponse, ToolError> {
        Err(ToolError::permanent("offline"))
    }
}

impl Model for Local {
    fn provider(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        "local"
    }
}

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

#[derive(serde::Deserialize, JsonSchema)]
pub struct Answer {
    pub flight: String,
}

#[workflow]
pub mod trip {
    use super::*;

    // `Search` is a tool, not a model: the model is the `Model` the agent talks to.
    #[step(entry, exit, tools = [Search])]
    pub async fn plan(ctx: &Ctx<(), tools::Plan>, to: String) -> Result<String, AgentError> {
        let answer: Answer = ctx.agent::<Search>().run(to).await?;
        Ok(answer.flight)
    }
}

fn main() {}
