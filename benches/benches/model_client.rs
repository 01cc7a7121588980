//! What a model client costs per call on top of the HTTP request it makes.
//!
//! ```text
//! cargo bench -p flow-benches --bench model_client -- --measurement-time 5 --sample-size 50
//! ```
//!
//! Each function sends one chat request (a system message, four user/assistant exchanges and a
//! question: ten messages, one tool offered, a structured answer asked for) to the scripted
//! model server on loopback, on a current-thread tokio runtime that also runs the server, and
//! waits for its answer:
//!
//! * `http_json`, `http_json_messages`: the body `OpenAiChat` (`AnthropicMessages`) sends,
//!   prebuilt, sent with `HttpJson::post` and its answer decoded as a `serde_json::Value`: the
//!   HTTP round trip and the server's own work, the baselines;
//! * `openai_chat`: `PolicyTool<OpenAiChat>::call` with the default policy: the request
//!   written in the wire format, the answer parsed into a `ChatResponse`, the `chat` span;
//! * `anthropic_messages`: the same through `AnthropicMessages`.
//!
//! A client's overhead per call is its time minus its baseline's (criterion's medians).

use criterion::{Criterion, criterion_group, criterion_main};
use flow_runtime::model::scripted::{Reply, Script, ScriptedModel};
use flow_runtime::model::{
    AnthropicMessages, ChatRequest, Message, OpenAiChat, ResponseFormat, ToolDef,
};
use flow_runtime::tool::http::HttpJson;
use flow_runtime::tool::{IdempotencyKey, PolicyTool, ToolCtx, ToolPolicy};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The conversation: ten messages, four assistant turns.
fn request() -> ChatRequest {
    let mut request = ChatRequest::new().system("You answer questions about the weather.");
    for i in 0..4 {
        request = request
            .user(format!("What was the weather like {i} days ago in Oslo?"))
            .message(Message::assistant(format!(
                "{i} days ago it was {} °C and dry in Oslo.",
                10 + i
            )));
    }
    let mut request = request
        .user("And tomorrow?")
        .response_format(ResponseFormat {
            name: "Forecast".to_owned(),
            schema: json!({
                "type": "object",
                "properties": { "celsius": { "type": "number" }, "rain": { "type": "boolean" } },
                "required": ["celsius", "rain"],
            }),
            strict: false,
        })
        .max_tokens(200);
    request.tools.push(ToolDef {
        name: "weather".to_owned(),
        description: "Today's temperature in a city, in °C.".to_owned(),
        parameters: json!({
            "type": "object",
            "properties": { "city": { "type": "string" } },
            "required": ["city"],
        }),
    });
    request
}

/// Times `iters` calls of `call`, forgetting the server's record of them afterwards.
async fn timed<F, Fut>(server: &ScriptedModel, iters: u64, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        call().await;
    }
    let elapsed = start.elapsed();
    server.forget_requests();
    elapsed
}

fn model_client(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = Reply::answer(json!({ "celsius": 12.5, "rain": false })).usage(180, 12);
    let server = rt
        .block_on(ScriptedModel::start(Script::new(vec![answer; 5])))
        .unwrap();
    let request = request();
    let key = IdempotencyKey::from("bench");
    let openai = PolicyTool::new(
        OpenAiChat::new(&server.openai_url(), "scripted").unwrap(),
        ToolPolicy::default(),
    );
    let anthropic = PolicyTool::new(
        AnthropicMessages::new(&server.anthropic_url(), "scripted").unwrap(),
        ToolPolicy::default(),
    );
    let http = HttpJson::new(&server.openai_url()).unwrap();
    let http_anthropic = HttpJson::new(&server.anthropic_url()).unwrap();
    let ctx = ToolCtx::new("bench", key.clone());
    // What each client sends for `request`, as the server saw it.
    rt.block_on(openai.call(&key, request.clone())).unwrap();
    rt.block_on(anthropic.call(&key, request.clone())).unwrap();
    let body: Value = server.requests()[0].body.clone();
    let body_anthropic: Value = server.requests()[1].body.clone();
    server.forget_requests();

    let mut group = c.benchmark_group("model_client");
    group.bench_function("http_json", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed(&server, iters, || async {
                let answer: Value = http.post(&ctx, "chat/completions", &body).await.unwrap();
                black_box(answer);
            }))
        });
    });
    group.bench_function("http_json_messages", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed(&server, iters, || async {
                let answer: Value = http_anthropic
                    .post(&ctx, "messages", &body_anthropic)
                    .await
                    .unwrap();
                black_box(answer);
            }))
        });
    });
    group.bench_function("openai_chat", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed(&server, iters, || async {
                black_box(openai.call(&key, request.clone()).await.unwrap());
            }))
        });
    });
    group.bench_function("anthropic_messages", |b| {
        b.iter_custom(|iters| {
            rt.block_on(timed(&server, iters, || async {
                black_box(anthropic.call(&key, request.clone()).await.unwrap());
            }))
        });
    });
    group.finish();
}

criterion_group!(benches, model_client);
criterion_main!(benches);
