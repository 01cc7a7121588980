//! Agents: a model choosing among a step's tools in a loop, limited at compile time to the
//! tools the step declares.
//!
//! In a step that declares `#[step(tools = [...])]`, [`Ctx::agent`] runs the loop:
//!
//! ```
//! use flow_runtime::agent::AgentError;
//! use flow_runtime::model::{ChatRequest, ChatResponse, FinishReason, Model, ToolCall};
//! use flow_runtime::prelude::*;
//!
//! /// Today's temperature in a city.
//! pub struct Weather;
//!
//! impl Tool for Weather {
//!     type Input = String;
//!     type Output = f32;
//!     const NAME: &'static str = "weather";
//!     const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";
//!     async fn call(&self, _: &ToolCtx, city: String) -> Result<f32, ToolError> {
//!         Ok(if city == "Oslo" { 14.0 } else { 11.5 })
//!     }
//! }
//!
//! /// A model of one's own (here it answers from a script; `OpenAiChat` and
//! /// `AnthropicMessages` are the built-in clients): a `Tool` from `ChatRequest` to `ChatResponse`.
//! pub struct Local;
//!
//! impl Tool for Local {
//!     type Input = ChatRequest;
//!     type Output = ChatResponse;
//!     const NAME: &'static str = "local";
//!     const DESCRIPTION: &'static str = "A local model.";
//!     async fn call(&self, _: &ToolCtx, request: ChatRequest) -> Result<ChatResponse, ToolError> {
//!         // First a tool call, then the answer, once the tool's result is in the conversation.
//!         Ok(if request.messages.len() < 3 {
//!             let call = ToolCall::new("call_1", "weather", r#""Oslo""#);
//!             ChatResponse::new(None, vec![call], FinishReason::ToolCalls, None)
//!         } else {
//!             let answer = r#"{"city": "Oslo", "celsius": 14.0}"#.to_owned();
//!             ChatResponse::new(Some(answer), Vec::new(), FinishReason::Stop, None)
//!         })
//!     }
//! }
//!
//! impl Model for Local {
//!     fn provider(&self) -> &str { "local" }
//!     fn model(&self) -> &str { "local" }
//! }
//!
//! /// The agent's typed answer.
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize, JsonSchema)]
//! pub struct Warmest {
//!     pub city: String,
//!     pub celsius: f32,
//! }
//!
//! #[workflow]
//! pub mod plan {
//!     use super::*;
//!
//!     #[step(entry, exit, tools = [Weather])]
//!     pub async fn warmest(ctx: &Ctx<(), tools::Warmest>, question: String) -> Result<Warmest, AgentError> {
//!         ctx.agent::<Local>()
//!             .instructions("Find the warmest city. Answer with a Warmest.")
//!             .max_turns(4)
//!             .run(question)
//!             .await
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The model is in the run's toolbox, with the tools; only `Weather` is offered to it.
//! let tools = Toolbox::new()
//!     .with(PolicyTool::new(Local, ToolPolicy::default()))
//!     .with(PolicyTool::new(Weather, ToolPolicy::default()));
//! let ctx = Ctx::builder(()).tools(tools).build();
//! let answer = plan::Workflow::run(&ctx, "Oslo or Bergen?".into()).await.unwrap();
//! assert_eq!(answer, Warmest { city: "Oslo".into(), celsius: 14.0 });
//! // Every model call and tool call is one of the step's calls, in order.
//! let calls: Vec<_> = ctx.calls().iter().map(|c| c.name.clone()).collect();
//! assert_eq!(calls, ["local", "weather", "local"]);
//! # }
//! ```
//!
//! - **The tools offered are exactly the step's.** The macro implements [`StepTools`] on the
//!   step's tools marker from its `tools = [...]` list (up to 16 tools): the [`ToolDef`]s
//!   offered and the dispatch from a tool call (a name and JSON arguments) to the typed tool, one source of
//!   truth. A step without `tools` has no marker, so `ctx.agent` does not compile there.
//! - **The model is a tool in the run's [`Toolbox`](crate::tool::Toolbox)**, chosen by its
//!   type (`ctx.agent::<OpenAiChat>()`), so each model call runs under its
//!   [`ToolPolicy`](crate::tool::ToolPolicy) and is recorded like every call of the step. It
//!   is not listed in `tools = [...]`: the model cannot call itself.
//! - **Every tool call goes through [`Ctx::call`]**: policy, idempotency key and the step's
//!   call record apply. Parallel tool calls of one turn run concurrently. A call of an unknown
//!   tool, arguments that do not decode (or do not validate, for a `Valid<T>` input) and a
//!   tool's permanent error go back to the model as a tool result it can correct; a failure the
//!   policy could not retry away (gave up, timed out, missing from the toolbox) fails the
//!   step with [`AgentError::Tool`], so the run's retry applies.
//! - **The answer is typed**: asked for as structured output ([`ResponseFormat::of`]); an
//!   answer that does not decode is re-asked up to [`Agent::answer_retries`] times, then
//!   [`AgentError::Answer`].
//! - **Hard caps**: turns, tool calls, input and output tokens, and a cost budget; exceeding
//!   one is [`AgentError::Cap`], which a workflow can route on.
//! - **Deterministic given the model's answers**: the loop's counters are derived from the
//!   answers alone, and calls begin in the order the model asked for them, so a step run again
//!   over recorded answers counts the same turns and tokens and makes the same calls.

use crate::__private::ToolList;
use crate::model::{
    AnswerError, ChatRequest, ChatResponse, Message, Model, ResponseFormat, ToolCall as ModelCall,
    ToolDef,
};
use crate::state::Ctx;
use crate::tool::{CallError, Denied, Tool};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// The future of one tool call an agent makes: [`StepTools::dispatch`].
pub type Dispatch<'a> = Pin<Box<dyn Future<Output = Result<ToolResult, CallError>> + Send + 'a>>;

/// What goes back to the model for one of its tool calls: the tool's output as JSON, or what
/// it can correct.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolResult {
    /// The tool's output, as JSON text.
    Output(String),
    /// What went wrong, for the model to correct: an unknown tool, arguments that do not
    /// decode or validate, a tool's permanent error.
    Error(String),
}

/// The tools a step offers its agent: implemented by `#[workflow]` for the tools marker of
/// every step that declares `#[step(tools = [...])]` (up to 16 tools), from that list, and for
/// nothing else (sealed).
#[diagnostic::on_unimplemented(
    message = "this step declares no tools, so it cannot run an agent: `{Self}` offers the model nothing",
    label = "the agent's tools come from the step's `#[step(tools = [...])]`",
    note = "declare the tools the model may choose from, `#[step(..., tools = [Search, Book])]`, and take the context as `&Ctx<Deps, tools::ThisStep>`"
)]
pub trait StepTools: crate::__private::DeclaredToolset + Sized + 'static {
    /// The step's tools as offered to the model, in the order the step declares them.
    fn defs() -> Vec<ToolDef>;

    /// Runs the model's tool `call` through `ctx`: decodes its arguments into the tool's typed
    /// input and calls the tool with [`Ctx::call`]; a name the step does not declare gets
    /// [`ToolResult::Error`] listing the names it does.
    fn dispatch<'a, D: Send + Sync>(ctx: &'a Ctx<D, Self>, call: &'a ModelCall) -> Dispatch<'a>;
}

// `ToolList`, the trait generated `StepTools` impls delegate to, is declared in `__private`
// (generated code names it only there); its impls for tuples of tools live here, beside the
// dispatch they share.
macro_rules! tool_list {
    ($($t:ident),+) => {
        impl<P, $($t),+> ToolList<P> for ($($t,)+)
        where
            P: crate::__private::DeclaredToolset,
            $($t: Tool, P: crate::__private::DeclaredTool<$t>,)+
        {
            fn defs() -> Vec<ToolDef> {
                vec![$(ToolDef::of::<$t>()),+]
            }

            fn dispatch<'a, D: Send + Sync>(ctx: &'a Ctx<D, P>, call: &'a ModelCall) -> Dispatch<'a> {
                $(
                    if call.name == $t::NAME {
                        return dispatch_to::<$t, D, P>(ctx, call);
                    }
                )+
                unknown_tool(call, &<Self as ToolList<P>>::defs())
            }
        }
    };
}

tool_list!(T1);
tool_list!(T1, T2);
tool_list!(T1, T2, T3);
tool_list!(T1, T2, T3, T4);
tool_list!(T1, T2, T3, T4, T5);
tool_list!(T1, T2, T3, T4, T5, T6);
tool_list!(T1, T2, T3, T4, T5, T6, T7);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13);
tool_list!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14);
tool_list!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15
);
tool_list!(
    T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12, T13, T14, T15, T16
);

/// Calls tool `T` for the model's `call`: what [`StepTools::dispatch`] does for each declared
/// tool. Arguments that do not decode as `T::Input` (which validates a `Valid<…>` input) and a
/// permanent error of the tool come back as [`ToolResult::Error`].
fn dispatch_to<'a, T, D, P>(ctx: &'a Ctx<D, P>, call: &'a ModelCall) -> Dispatch<'a>
where
    T: Tool,
    D: Send + Sync,
    P: crate::__private::DeclaredTool<T> + crate::__private::DeclaredToolset,
{
    // The OpenTelemetry GenAI span of a tool execution; arguments and results are content, and
    // are not recorded.
    let span = crate::driver::trace::info_span_if_traced!(
        "execute_tool",
        otel.name = %format_args!("execute_tool {}", T::NAME),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = T::NAME,
        gen_ai.tool.call.id = %call.id,
        gen_ai.tool.type = "function",
        error.type = tracing::field::Empty,
    );
    let traced = span.clone();
    let run = async move {
        let input = match call.decode::<T::Input>() {
            Ok(input) => input,
            Err(e) => {
                return Ok(ToolResult::Error(format!(
                    "{e}; call `{}` again with arguments that fit its schema",
                    T::NAME
                )));
            }
        };
        let called = match P::approval(T::NAME) {
            None => ctx.call_with::<T>(None, input).await,
            Some(timeout) => match ctx.gated_call::<T>(input, &call.id, timeout).await? {
                Ok(output) => Ok(output),
                // A rejection is the tool's result for the model; the rest ends the agent.
                Err((_, Denied::Rejected { reason })) => {
                    return Ok(ToolResult::Error(format!(
                        "a person rejected this call of `{}`: {reason}",
                        T::NAME
                    )));
                }
                Err((_, Denied::Unusable { reason })) => {
                    return Ok(ToolResult::Error(format!(
                        "a person approved this call of `{}` with arguments that do not fit its \
                         schema: {reason}",
                        T::NAME
                    )));
                }
                Err((call_id, denied)) => {
                    return Err(CallError::NotApproved {
                        tool: T::NAME,
                        call_id,
                        denied,
                    });
                }
            },
        };
        match called {
            Ok(output) => Ok(match serde_json::to_string(&output) {
                Ok(json) => ToolResult::Output(json),
                Err(e) => ToolResult::Error(format!(
                    "tool `{}` answered, but its output is not JSON: {e}",
                    T::NAME
                )),
            }),
            Err(CallError::Rejected { source, .. }) => Ok(ToolResult::Error(format!(
                "tool `{}` refused the call: {source}",
                T::NAME
            ))),
            Err(e) => Err(e),
        }
    };
    Box::pin(tracing::Instrument::instrument(
        futures_util::FutureExt::map(run, move |result| {
            match &result {
                Ok(ToolResult::Error(_)) => {
                    traced.record("error.type", "tool_error");
                }
                Err(_) => {
                    traced.record("error.type", "call_error");
                }
                Ok(_) => {}
            }
            result
        }),
        span,
    ))
}

/// The answer for a call of a tool the step does not declare: what [`StepTools::dispatch`]
/// does for every other name.
fn unknown_tool<'a>(call: &ModelCall, offered: &[ToolDef]) -> Dispatch<'a> {
    let names = offered
        .iter()
        .map(|d| format!("`{}`", d.name))
        .collect::<Vec<_>>()
        .join(", ");
    let message = format!(
        "there is no tool `{}`; call one of the tools offered: {names}",
        call.name
    );
    Box::pin(async move { Ok(ToolResult::Error(message)) })
}

/// Which cap an agent reached: see [`AgentError::Cap`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Cap {
    /// [`Agent::max_turns`]: model calls.
    Turns(u32),
    /// [`Agent::max_tool_calls`]: tool calls, counted when the model asks for them.
    ToolCalls(u32),
    /// [`Agent::max_input_tokens`]: input tokens over all model calls.
    InputTokens(u64),
    /// [`Agent::max_output_tokens`]: output tokens over all model calls.
    OutputTokens(u64),
    /// [`Agent::budget`]: the cost of the tokens, at the price given.
    Cost(f64),
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Turns(n) => write!(f, "{n} turn(s) (`max_turns`)"),
            Self::ToolCalls(n) => write!(f, "{n} tool call(s) (`max_tool_calls`)"),
            Self::InputTokens(n) => write!(f, "{n} input tokens (`max_input_tokens`)"),
            Self::OutputTokens(n) => write!(f, "{n} output tokens (`max_output_tokens`)"),
            Self::Cost(c) => write!(f, "a cost of {c} (`budget`)"),
        }
    }
}

/// What an agent has used so far: derived from the model's answers alone, so a step run again
/// over recorded answers counts the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct AgentUsage {
    /// Model calls made.
    pub turns: u32,
    /// Tool calls the model asked for (unknown tools and bad arguments included).
    pub tool_calls: u32,
    /// Input tokens, as the model reported them.
    pub input_tokens: u64,
    /// Output tokens, as the model reported them.
    pub output_tokens: u64,
    /// The cost of those tokens at the [`Price`] given to [`Agent::budget`] (0 without one).
    pub cost: f64,
}

/// The price of a model's tokens, in any currency unit, for [`Agent::budget`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    input_per_million: f64,
    output_per_million: f64,
}

impl Price {
    /// The price of a million input tokens and of a million output tokens.
    #[must_use]
    pub const fn per_million_tokens(input: f64, output: f64) -> Self {
        Self {
            input_per_million: input,
            output_per_million: output,
        }
    }

    /// The cost of `input` and `output` tokens.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // token counts are far below 2^52
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input_per_million + output as f64 * self.output_per_million)
            / 1_000_000.0
    }
}

/// Why an agent ended without an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A cap was reached: the model got no further turn. Route on it, or raise the cap.
    #[error(
        "the agent reached its cap of {cap} without an answer; raise the cap on `ctx.agent()` or route on `AgentError::Cap`"
    )]
    Cap {
        /// Which cap.
        cap: Cap,
        /// What the agent had used when it stopped.
        usage: AgentUsage,
    },
    /// The model's final answer did not decode as the answer's type, however often re-asked.
    #[error("the model's answer did not decode after {asks} ask(s) (`answer_retries`): {source}")]
    Answer {
        /// How many final answers the model gave.
        asks: u32,
        /// What was wrong with the last one.
        #[source]
        source: AnswerError,
        /// What the agent had used.
        usage: AgentUsage,
    },
    /// A model call failed under its policy (or the model is not in the run's toolbox).
    #[error("the agent's model call failed: {0}")]
    Model(#[source] CallError),
    /// A tool call failed in a way the model cannot correct (retries ran out, a timeout, the
    /// tool missing from the run's toolbox): the step fails, so the run's retry applies.
    #[error("a tool call of the agent failed: {0}")]
    Tool(#[source] CallError),
    /// A call of an approval-gated tool (`approve = [...]`) was not approved in time, or was
    /// approved for other arguments: route on it (like an event's timeout), or let the step
    /// fail. A rejection is not this: it goes back to the model as the tool's result.
    #[error("the agent's call `{call_id}` of tool `{tool}` was not made: it {denied}")]
    NotApproved {
        /// The tool.
        tool: &'static str,
        /// The call's id.
        call_id: String,
        /// Why.
        denied: Denied,
    },
}

/// An agent loop being set up: made by [`Ctx::agent`], run by [`Agent::run`].
#[must_use = "an agent does nothing until `run` is awaited"]
pub struct Agent<'a, D, P, M> {
    ctx: &'a Ctx<D, P>,
    instructions: Option<String>,
    max_turns: u32,
    max_tool_calls: u32,
    max_input_tokens: u64,
    max_output_tokens: u64,
    budget: Option<(Price, f64)>,
    answer_retries: u32,
    max_tokens: Option<u32>,
    model: std::marker::PhantomData<fn() -> M>,
    parts: Parts<D, P>,
}

/// A model call: the request, and the model's answer.
type Ask<'a> = Pin<Box<dyn Future<Output = Result<ChatResponse, CallError>> + Send + 'a>>;

/// What an agent's loop needs of its step's tools `P` and its model, taken where
/// [`Ctx::agent`] checks that `P` are a step's tools and the model is a [`Model`]. The methods
/// of [`Agent`] then need no bounds of their own: a mistake there is reported once, at
/// `ctx.agent::<M>()`, not again at `.run(…)`.
struct Parts<D, P> {
    defs: fn() -> Vec<ToolDef>,
    dispatch: for<'a> fn(&'a Ctx<D, P>, &'a ModelCall) -> Dispatch<'a>,
    ask: for<'a> fn(&'a Ctx<D, P>, ChatRequest) -> Ask<'a>,
}

/// One call of model `M` through the step's context, journaled as a model call with its
/// tokens.
fn ask<D: Send + Sync, P, M: Model>(ctx: &Ctx<D, P>, request: ChatRequest) -> Ask<'_> {
    Box::pin(async move {
        ctx.call_as::<M>(
            None,
            request,
            &crate::driver::Annotate {
                kind: crate::state::CallKind::Model,
                usage: |answer: &ChatResponse| answer.usage,
            },
        )
        .await
    })
}

impl<D, P, M> fmt::Debug for Agent<'_, D, P, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("max_turns", &self.max_turns)
            .field("max_tool_calls", &self.max_tool_calls)
            .field("max_input_tokens", &self.max_input_tokens)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("budget", &self.budget)
            .field("answer_retries", &self.answer_retries)
            .finish_non_exhaustive()
    }
}

impl<D: Send + Sync, P> Ctx<D, P> {
    /// An agent of this step: model `M` (a [`Model`] in the run's toolbox) choosing among the
    /// tools the step declares, until it gives an answer. See the [module](crate::agent).
    ///
    /// Defaults: 10 turns, 50 tool calls, 2 re-asks of an answer that does not decode, no
    /// token or cost cap.
    pub fn agent<M: Model>(&self) -> Agent<'_, D, P, M>
    where
        P: StepTools,
    {
        Agent {
            ctx: self,
            instructions: None,
            max_turns: 10,
            max_tool_calls: 50,
            max_input_tokens: u64::MAX,
            max_output_tokens: u64::MAX,
            budget: None,
            answer_retries: 2,
            max_tokens: None,
            model: std::marker::PhantomData,
            parts: Parts {
                defs: P::defs,
                dispatch: P::dispatch::<D>,
                ask: ask::<D, P, M>,
            },
        }
    }
}

impl<D, P, M> Agent<'_, D, P, M> {
    /// The system instructions.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// At most `turns` model calls (re-asks included).
    pub fn max_turns(mut self, turns: u32) -> Self {
        self.max_turns = turns;
        self
    }

    /// At most `calls` tool calls in all. A turn whose calls would exceed it runs none of them.
    pub fn max_tool_calls(mut self, calls: u32) -> Self {
        self.max_tool_calls = calls;
        self
    }

    /// At most `tokens` input tokens over all model calls. Checked after each call (a call's
    /// size is known only once it is answered): the agent stops after the call that crosses it.
    pub fn max_input_tokens(mut self, tokens: u64) -> Self {
        self.max_input_tokens = tokens;
        self
    }

    /// At most `tokens` output tokens over all model calls, checked like
    /// [`max_input_tokens`](Agent::max_input_tokens).
    pub fn max_output_tokens(mut self, tokens: u64) -> Self {
        self.max_output_tokens = tokens;
        self
    }

    /// At most `max` spent on tokens at `price`, checked like
    /// [`max_input_tokens`](Agent::max_input_tokens).
    pub fn budget(mut self, price: Price, max: f64) -> Self {
        self.budget = Some((price, max));
        self
    }

    /// Re-ask an answer that does not decode at most `retries` times.
    pub fn answer_retries(mut self, retries: u32) -> Self {
        self.answer_retries = retries;
        self
    }

    /// Ask the model for at most `tokens` output tokens per call.
    pub fn max_tokens_per_call(mut self, tokens: u32) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Runs the loop on `task` (the user message) until the model answers with an `A`.
    ///
    /// # Errors
    ///
    /// A cap was reached, the answer never decoded, or a model or tool call failed in a way
    /// the model cannot correct: see [`AgentError`].
    pub async fn run<A>(self, task: impl Into<String>) -> Result<A, AgentError>
    where
        A: JsonSchema + DeserializeOwned,
    {
        self.run_with_usage(task).await.map(|(answer, _)| answer)
    }

    /// [`run`](Agent::run), returning what the agent used as well.
    ///
    /// # Errors
    ///
    /// As [`run`](Agent::run).
    pub async fn run_with_usage<A>(
        self,
        task: impl Into<String>,
    ) -> Result<(A, AgentUsage), AgentError>
    where
        A: JsonSchema + DeserializeOwned,
    {
        let mut request = ChatRequest::new();
        if let Some(instructions) = &self.instructions {
            request.messages.push(Message::system(instructions.clone()));
        }
        request.messages.push(Message::user(task));
        request.tools = (self.parts.defs)();
        request.response_format = Some(ResponseFormat::of::<A>());
        request.max_tokens = self.max_tokens;

        let mut usage = AgentUsage::default();
        let mut asks = 0;
        loop {
            if usage.turns >= self.max_turns {
                return Err(self.cap(Cap::Turns(self.max_turns), usage));
            }
            let answer = (self.parts.ask)(self.ctx, request.clone())
                .await
                .map_err(AgentError::Model)?;
            self.count(&mut usage, &answer)?;
            request.messages.push(answer.message());

            if answer.tool_calls.is_empty() {
                asks += 1;
                match answer.decode::<A>() {
                    Ok(value) => return Ok((value, usage)),
                    Err(source) if asks > self.answer_retries => {
                        return Err(AgentError::Answer {
                            asks,
                            source,
                            usage,
                        });
                    }
                    Err(source) => request.messages.push(Message::user(format!(
                        "{source}. Answer again, with JSON that fits the requested schema \
                         and nothing else."
                    ))),
                }
                continue;
            }

            let asked = u32::try_from(answer.tool_calls.len()).unwrap_or(u32::MAX);
            if usage.tool_calls.saturating_add(asked) > self.max_tool_calls {
                return Err(self.cap(Cap::ToolCalls(self.max_tool_calls), usage));
            }
            usage.tool_calls += asked;
            // Concurrently; each call begins (and takes its position in the step's calls) in
            // the model's order, on the first poll.
            let results = futures_util::future::join_all(
                answer
                    .tool_calls
                    .iter()
                    .map(|call| (self.parts.dispatch)(self.ctx, call)),
            )
            .await;
            for (call, result) in answer.tool_calls.iter().zip(results) {
                request.messages.push(
                    match result.map_err(|e| match e {
                        CallError::NotApproved {
                            tool,
                            call_id,
                            denied,
                        } => AgentError::NotApproved {
                            tool,
                            call_id,
                            denied,
                        },
                        other => AgentError::Tool(other),
                    })? {
                        ToolResult::Output(json) => Message::tool_result(call, json),
                        ToolResult::Error(why) => Message::tool_error(call, why),
                    },
                );
            }
        }
    }

    fn cap(&self, cap: Cap, usage: AgentUsage) -> AgentError {
        let _ = self;
        AgentError::Cap { cap, usage }
    }

    /// Adds `answer`'s usage, and stops at a token or cost cap.
    fn count(&self, usage: &mut AgentUsage, answer: &ChatResponse) -> Result<(), AgentError> {
        usage.turns += 1;
        let used = answer.usage.unwrap_or_default();
        usage.input_tokens = usage.input_tokens.saturating_add(used.input_tokens);
        usage.output_tokens = usage.output_tokens.saturating_add(used.output_tokens);
        if usage.input_tokens > self.max_input_tokens {
            return Err(self.cap(Cap::InputTokens(self.max_input_tokens), *usage));
        }
        if usage.output_tokens > self.max_output_tokens {
            return Err(self.cap(Cap::OutputTokens(self.max_output_tokens), *usage));
        }
        if let Some((price, max)) = self.budget {
            usage.cost = price.cost(usage.input_tokens, usage.output_tokens);
            if usage.cost > max {
                return Err(self.cap(Cap::Cost(max), *usage));
            }
        }
        Ok(())
    }
}
