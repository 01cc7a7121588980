//! What the agent loop (`ctx.agent::<M>().run::<A>(..)`) costs per turn, the model excluded.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench agent_loop -- --measurement-time 5 --sample-size 50
//! ```
//!
//! The model is a `Model` of this file that answers in-process at once (no HTTP): while the
//! conversation holds fewer than `turns` assistant messages it asks for one call of a no-op tool,
//! then it gives the structured answer. Each iteration is `Workflow::run` of a one-step workflow
//! whose step runs the agent, on a current-thread runtime, with a fresh context; the model and
//! the tool are in the toolbox under `ToolPolicy::default()`.
//!
//! `agent_loop/turns_1` is one model call and the answer; `agent_loop/turns_11` adds ten turns
//! of (model call, tool call through `ctx.call`, result back into the conversation). The loop's
//! overhead per turn is `(turns_11 - turns_1) / 10` (criterion's medians): the request (the
//! conversation so far) cloned for the call, the policy stack and call record of the model
//! call and of the tool call, decoding the arguments, encoding the result. The conversation
//! grows with each turn, so this is the average over a ten-turn conversation.
//!
//! Measured (2 shared cores, other builds running; `--measurement-time 3 --sample-size 30`):
//! `turns_1` 7.0 µs, `turns_11` 98.8 µs, so about 9.2 µs per turn (target ≤ 20 µs).

use criterion::{Criterion, criterion_group, criterion_main};
use flow_runtime::model::{
    ChatRequest, ChatResponse, FinishReason, Message, Model, ToolCall, Usage,
};
use flow_runtime::tool::{PolicyTool, Tool, ToolCtx, ToolError, ToolPolicy, Toolbox};
use flow_runtime::{JsonSchema, schemars};
use std::hint::black_box;

/// Does nothing, successfully.
#[derive(Debug)]
struct Noop;

impl Tool for Noop {
    type Input = ();
    type Output = ();
    const NAME: &'static str = "noop";
    const DESCRIPTION: &'static str = "Does nothing.";

    async fn call(&self, _ctx: &ToolCtx, _input: ()) -> Result<(), ToolError> {
        Ok(())
    }
}

/// A model answering in-process: `turns - 1` tool calls, then the answer.
#[derive(Debug)]
struct Instant {
    turns: usize,
}

impl Tool for Instant {
    type Input = ChatRequest;
    type Output = ChatResponse;
    const NAME: &'static str = "instant";
    const DESCRIPTION: &'static str = "Answers at once.";

    async fn call(&self, _ctx: &ToolCtx, request: ChatRequest) -> Result<ChatResponse, ToolError> {
        let turn = request
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant { .. }))
            .count();
        let usage = Some(Usage {
            input_tokens: 100,
            output_tokens: 10,
        });
        Ok(if turn + 1 < self.turns {
            ChatResponse::new(
                None,
                vec![ToolCall::new(format!("call_{turn}"), "noop", "null")],
                FinishReason::ToolCalls,
                usage,
            )
        } else {
            ChatResponse::new(
                Some(r#"{"done": true}"#.to_owned()),
                Vec::new(),
                FinishReason::Stop,
                usage,
            )
        })
    }
}

impl Model for Instant {
    fn provider(&self) -> &'static str {
        "bench"
    }

    fn model(&self) -> &'static str {
        "instant"
    }
}

/// The agent's answer.
#[derive(Debug, serde::Deserialize, JsonSchema)]
struct Done {
    done: bool,
}

#[flow_runtime::workflow]
mod agent {
    use super::{Done, Instant, Noop};
    use flow_runtime::agent::AgentError;
    use flow_runtime::prelude::*;

    #[step(entry, exit, tools = [Noop])]
    pub(crate) async fn step(ctx: &Ctx<(), tools::Step>, task: String) -> Result<bool, AgentError> {
        let done: Done = ctx.agent::<Instant>().max_turns(20).run(task).await?;
        Ok(done.done)
    }
}

fn per_turn(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let mut g = c.benchmark_group("agent_loop");
    for turns in [1, 11] {
        let toolbox = Toolbox::new()
            .with(PolicyTool::new(Noop, ToolPolicy::default()))
            .with(PolicyTool::new(Instant { turns }, ToolPolicy::default()));
        let run = || async {
            let ctx = flow_runtime::state::Ctx::builder(())
                .tools(toolbox.clone())
                .build();
            agent::Workflow::run(&ctx, black_box("go".to_owned())).await
        };
        assert!(rt.block_on(run()).expect("the agent answers"));
        g.bench_function(format!("turns_{turns}"), |b| b.to_async(&rt).iter(run));
    }
    g.finish();
}

criterion_group!(benches, per_turn);
criterion_main!(benches);
