use crate::model::ToolDef;
use crate::tool::{ToolCtx, ToolError};
use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;

/// Something a workflow calls outside itself: an HTTP API, a model, a database.
///
/// A tool has typed input and output (serde types that also derive
/// [`JsonSchema`](schemars::JsonSchema), so the tool can be described to a model as a
/// function, see [`ToolSpec`]), a name, and one method: [`call`](Tool::call), which makes one
/// attempt and says whether its failure is worth retrying ([`ToolError::transient`]) or not
/// ([`ToolError::permanent`]).
///
/// Retries, timeouts, rate limits, concurrency limits and credentials are not the tool's
/// business: declare them once in a [`ToolPolicy`](crate::tool::ToolPolicy) and call the tool
/// through a [`PolicyTool`](crate::tool::PolicyTool).
///
/// ```
/// use flow_runtime::tool::{IdempotencyKey, PolicyTool, Tool, ToolCtx, ToolError, ToolPolicy, ToolSpec};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
///
/// /// Counts the words of a text.
/// struct WordCount;
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema)]
/// struct Text {
///     /// The text to count.
///     text: String,
/// }
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
/// struct Count {
///     words: usize,
/// }
///
/// impl Tool for WordCount {
///     type Input = Text;
///     type Output = Count;
///     const NAME: &'static str = "word_count";
///     const DESCRIPTION: &'static str = "Counts the words of a text.";
///
///     async fn call(&self, _ctx: &ToolCtx, input: Text) -> Result<Count, ToolError> {
///         if input.text.len() > 1_000_000 {
///             return Err(ToolError::permanent("text longer than 1 MB"));
///         }
///         Ok(Count { words: input.text.split_whitespace().count() })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = ToolSpec::of::<WordCount>();
/// assert_eq!(spec.input_schema.get("required").unwrap(), &serde_json::json!(["text"]));
///
/// let tool = PolicyTool::new(WordCount, ToolPolicy::default());
/// let count = tool.call(&IdempotencyKey::from("k"), Text { text: "a b c".into() }).await?;
/// assert_eq!(count, Count { words: 3 });
/// # Ok(())
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a tool",
    label = "not a tool",
    note = "implement `flow_runtime::tool::Tool` for `{Self}`: its input, output, name, description and `call`"
)]
pub trait Tool: Send + Sync + 'static {
    /// What the tool takes. Cloned once per attempt, so that a retry sends the same input.
    type Input: Serialize + DeserializeOwned + JsonSchema + Clone + Send + 'static;

    /// What the tool returns.
    type Output: Serialize + DeserializeOwned + JsonSchema + Send + 'static;

    /// The tool's name: in spans, errors, and the function name a model sees.
    const NAME: &'static str;

    /// What the tool does, for a model deciding whether to call it.
    const DESCRIPTION: &'static str;

    /// Makes one attempt.
    ///
    /// `ctx` holds the call's [idempotency key](ToolCtx::idempotency_key) (send it along, so
    /// that the service can recognise a retry), the [attempt](ToolCtx::attempt) number, and
    /// the [credential](ToolCtx::auth_header) when the policy declares one.
    fn call(
        &self,
        ctx: &ToolCtx,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

/// A tool as a model sees it: name, description, and the JSON Schemas of its input and
/// output (draft 2020-12, as [`schemars`] generates them).
///
/// Serialises to `{"name", "description", "input_schema", "output_schema"}`.
///
/// ```
/// use flow_runtime::tool::{Tool, ToolCtx, ToolError, ToolSpec};
///
/// struct Now;
///
/// impl Tool for Now {
///     type Input = ();
///     type Output = u64;
///     const NAME: &'static str = "now";
///     const DESCRIPTION: &'static str = "Seconds since the Unix epoch.";
///     async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<u64, ToolError> {
///         Ok(0)
///     }
/// }
///
/// let spec = ToolSpec::of::<Now>();
/// let json = serde_json::to_value(&spec).unwrap();
/// assert_eq!(json["name"], "now");
/// assert_eq!(json["output_schema"]["type"], "integer");
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ToolSpec {
    /// [`Tool::NAME`].
    pub name: &'static str,
    /// [`Tool::DESCRIPTION`].
    pub description: &'static str,
    /// The schema of [`Tool::Input`].
    pub input_schema: Schema,
    /// The schema of [`Tool::Output`].
    pub output_schema: Schema,
}

impl ToolSpec {
    /// The spec of tool `T`.
    #[must_use]
    pub fn of<T: Tool>() -> Self {
        Self {
            name: T::NAME,
            description: T::DESCRIPTION,
            input_schema: schemars::schema_for!(T::Input),
            output_schema: schemars::schema_for!(T::Output),
        }
    }

    /// The tool as an entry of OpenAI's `tools` list (Chat Completions):
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    #[must_use]
    pub fn to_openai(&self) -> serde_json::Value {
        ToolDef::from(self).to_openai()
    }

    /// The tool as an entry of Anthropic's `tools` list (Messages API):
    /// `{"name", "description", "input_schema"}`.
    #[must_use]
    pub fn to_anthropic(&self) -> serde_json::Value {
        ToolDef::from(self).to_anthropic()
    }

    /// The tool as an entry of Gemini's `functionDeclarations`:
    /// `{"name", "description", "parameters"}`.
    #[must_use]
    pub fn to_gemini(&self) -> serde_json::Value {
        let def = ToolDef::from(self);
        serde_json::json!({
            "name": def.name,
            "description": def.description,
            "parameters": def.parameters,
        })
    }
}

/// A workflow's tools, exported in the JSON that model APIs accept for function calling.
///
/// ```
/// use flow_runtime::tool::{Catalogue, Tool, ToolCtx, ToolError, ToolSpec};
/// use flow_runtime::{JsonSchema, schemars};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize, JsonSchema)]
/// struct Query { city: String }
///
/// struct Weather;
/// impl Tool for Weather {
///     type Input = Query;
///     type Output = f32;
///     const NAME: &'static str = "weather";
///     const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";
///     async fn call(&self, _: &ToolCtx, _: Query) -> Result<f32, ToolError> { Ok(21.5) }
/// }
///
/// let catalogue = Catalogue::new().with::<Weather>();
/// let openai = catalogue.openai();
/// assert_eq!(openai[0]["function"]["name"], "weather");
/// assert_eq!(openai[0]["function"]["parameters"]["required"][0], "city");
/// assert_eq!(catalogue.anthropic()[0]["input_schema"]["type"], "object");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    specs: Vec<ToolSpec>,
}

impl Catalogue {
    /// An empty catalogue.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue with tool `T` added.
    #[must_use]
    pub fn with<T: Tool>(mut self) -> Self {
        self.specs.push(ToolSpec::of::<T>());
        self
    }

    /// The tools' specs.
    #[must_use]
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// OpenAI's `tools` list.
    #[must_use]
    pub fn openai(&self) -> serde_json::Value {
        self.specs.iter().map(ToolSpec::to_openai).collect()
    }

    /// Anthropic's `tools` list.
    #[must_use]
    pub fn anthropic(&self) -> serde_json::Value {
        self.specs.iter().map(ToolSpec::to_anthropic).collect()
    }

    /// Gemini's `functionDeclarations` list.
    #[must_use]
    pub fn gemini(&self) -> serde_json::Value {
        self.specs.iter().map(ToolSpec::to_gemini).collect()
    }
}
