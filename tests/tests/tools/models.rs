//! The model clients (`OpenAiChat`, `AnthropicMessages`) against the scripted model server over
//! real HTTP on loopback: what each request carries (messages, tools offered, the answer's
//! schema, credential, idempotency key), how each answer is read (tool calls, parallel tool
//! calls, malformed arguments, an unknown tool, a structured answer, usage), how failures are
//! handled (429 with `Retry-After` and 500 retried, malformed JSON a typed error),.
//! (The key's absence from logs and the GenAI spans are in `model_traces.rs`, whose one test
//! owns the process's tracing subscribers.)

use flow_runtime::model::scripted::{Api, Reply, Script, ScriptedModel};
use flow_runtime::model::{
    AnthropicMessages, ChatRequest, ChatResponse, FinishReason, Message, Model, ModelError,
    OpenAiChat, ResponseFormat, ToolCall, ToolDef, Usage,
};
use flow_runtime::tool::{CallError, PolicyTool, Tool, ToolCtx, ToolError};
use flow_tests::model::{BOTH, Client, KEY, call_with, policy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::error::Error as _;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Fixtures.

/// The city to look up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct City {
    /// The city's name.
    city: String,
}

/// Today's temperature in a city.
struct Weather;

impl Tool for Weather {
    type Input = City;
    type Output = f32;
    const NAME: &'static str = "weather";
    const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";

    async fn call(&self, _: &ToolCtx, _: City) -> Result<f32, ToolError> {
        Ok(21.5)
    }
}

/// The structured final answer.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
struct Forecast {
    city: String,
    celsius: f32,
}

/// Calls the scripted server through `client` under `policy(client)`.
async fn call(
    server: &ScriptedModel,
    client: Client,
    key: &str,
    request: ChatRequest,
) -> Result<ChatResponse, CallError> {
    call_with(server, client, policy(client), false, key, request).await
}

async fn serve(script: Script) -> ScriptedModel {
    ScriptedModel::start(script).await.unwrap()
}

fn weather_request() -> ChatRequest {
    ChatRequest::new()
        .system("You forecast.")
        .user("Weather in Oslo and Bergen?")
        .tool::<Weather>()
        .response_format(ResponseFormat::of::<Forecast>())
        .max_tokens(300)
}

/// The `ModelError` under a call error, if there is one.
fn model_error(err: &CallError) -> Option<&ModelError> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(found) = e.downcast_ref::<ModelError>() {
            return Some(found);
        }
        source = e.source();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// What a request carries.

#[tokio::test]
async fn an_openai_request_offers_the_tools_and_the_answer_schema() {
    let server = serve(Script::new([Reply::text("ok")])).await;

    call(&server, Client::OpenAi, "k-shape", weather_request())
        .await
        .unwrap();

    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.api, Api::OpenAi);
    assert_eq!(
        seen.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(seen.idempotency_key.as_deref(), Some("k-shape"));
    let body = &seen.body;
    assert_eq!(body["model"], "scripted-gpt");
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "You forecast." },
            { "role": "user", "content": "Weather in Oslo and Bergen?" },
        ])
    );
    // The tool, exactly as the catalogue describes it.
    assert_eq!(body["tools"], json!([ToolDef::of::<Weather>().to_openai()]));
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["name"], "Forecast");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        json!(["city", "celsius"])
    );
    assert_eq!(body["max_tokens"], 300);
}

#[tokio::test]
async fn an_anthropic_request_offers_the_tools_and_the_answer_tool() {
    let server = serve(Script::new([Reply::text("ok")])).await;

    call(&server, Client::Anthropic, "k-shape", weather_request())
        .await
        .unwrap();

    let seen = &server.requests()[0];
    assert_eq!(seen.api, Api::Anthropic);
    assert_eq!(seen.api_key.as_deref(), Some(KEY));
    assert_eq!(seen.authorization, None);
    assert_eq!(seen.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(seen.idempotency_key.as_deref(), Some("k-shape"));
    let body = &seen.body;
    assert_eq!(body["model"], "scripted-claude");
    assert_eq!(body["system"], "You forecast.");
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(
        body["messages"],
        json!([{ "role": "user", "content": [{ "type": "text", "text": "Weather in Oslo and Bergen?" }] }])
    );
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0], ToolDef::of::<Weather>().to_anthropic());
    assert_eq!(tools[1]["name"], "Forecast");
    assert_eq!(
        tools[1]["input_schema"]["required"],
        json!(["city", "celsius"])
    );
    // Other tools are offered, so the model is not forced to answer at once.
    assert!(body.get("tool_choice").is_none());
}

#[tokio::test]
async fn anthropic_forces_the_answer_tool_when_it_is_the_only_one() {
    let server = serve(Script::new([Reply::answer(
        json!({ "city": "Oslo", "celsius": 3.5 }),
    )]))
    .await;
    let request = ChatRequest::new()
        .user("Oslo?")
        .response_format(ResponseFormat::of::<Forecast>());

    let answer = call(&server, Client::Anthropic, "k", request)
        .await
        .unwrap();

    assert_eq!(
        server.requests()[0].body["tool_choice"],
        json!({ "type": "tool", "name": "Forecast" })
    );
    assert_eq!(
        answer.decode::<Forecast>().unwrap(),
        Forecast {
            city: "Oslo".into(),
            celsius: 3.5
        }
    );
    assert_eq!(answer.finish_reason, FinishReason::Stop);
}

// ---------------------------------------------------------------------------------------------
// How an answer is read.

#[tokio::test]
async fn parallel_tool_calls_and_usage_are_read() {
    for client in BOTH {
        let server = serve(Script::new([Reply::tool_calls([
            ("weather", json!({ "city": "Oslo" })),
            ("weather", json!({ "city": "Bergen" })),
        ])
        .usage(12, 7)]))
        .await;

        let answer = call(&server, client, "k", weather_request()).await.unwrap();

        assert_eq!(answer.finish_reason, FinishReason::ToolCalls, "{client:?}");
        assert_eq!(answer.content, None, "{client:?}");
        assert_eq!(
            answer.usage,
            Some(Usage {
                input_tokens: 12,
                output_tokens: 7
            }),
            "{client:?}"
        );
        let cities: Vec<City> = answer
            .tool_calls
            .iter()
            .map(|c| {
                assert_eq!(c.name, "weather");
                c.decode().unwrap()
            })
            .collect();
        assert_eq!(
            cities,
            [
                City {
                    city: "Oslo".into()
                },
                City {
                    city: "Bergen".into()
                }
            ],
            "{client:?}"
        );
        assert_ne!(
            answer.tool_calls[0].id, answer.tool_calls[1].id,
            "{client:?}"
        );
        assert!(answer.id.is_some() && answer.model.is_some(), "{client:?}");
    }
}

/// A Messages server whose usage says `u64::MAX` input tokens and 2 read from the cache: the
/// client adds them saturating. `+` overflowed: a panic in debug builds, and in release a wrap
/// to 1, which an agent's `max_input_tokens` would have let through.
#[tokio::test]
async fn anthropic_token_counts_past_u64_max_saturate() {
    let app = axum::Router::new().fallback(|| async {
        axum::Json(json!({
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{ "type": "text", "text": "hi" }],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": u64::MAX,
                "cache_read_input_tokens": 2,
                "output_tokens": 1,
            },
        }))
    });
    let origin = flow_tests::http::serve(app).await;
    let model = AnthropicMessages::new(&format!("{origin}/v1"), "m").unwrap();
    let answer = PolicyTool::new(model, policy(Client::Anthropic))
        .call(&"k".into(), weather_request())
        .await
        .unwrap();
    assert_eq!(
        answer.usage,
        Some(Usage {
            input_tokens: u64::MAX,
            output_tokens: 1
        })
    );
}

#[tokio::test]
async fn a_conversation_goes_from_tool_calls_to_a_structured_answer() {
    for client in BOTH {
        let server = serve(Script::new([
            Reply::tool_call("weather", json!({ "city": "Oslo" })),
            Reply::answer(json!({ "city": "Oslo", "celsius": 21.5 })),
        ]))
        .await;
        let mut request = weather_request();

        let first = call(&server, client, "turn-0", request.clone())
            .await
            .unwrap();
        request.messages.push(first.message());
        request
            .messages
            .push(Message::tool_result(&first.tool_calls[0], "21.5"));
        let second = call(&server, client, "turn-1", request).await.unwrap();

        assert_eq!(second.finish_reason, FinishReason::Stop, "{client:?}");
        assert!(second.tool_calls.is_empty(), "{client:?}");
        assert_eq!(
            second.decode::<Forecast>().unwrap(),
            Forecast {
                city: "Oslo".into(),
                celsius: 21.5
            },
            "{client:?}"
        );
        // The second request carries the call and its result in the API's own shape.
        let seen = server.requests();
        assert_eq!(seen[1].turn, 1);
        let messages = seen[1].body["messages"].as_array().unwrap().clone();
        let call_id = &first.tool_calls[0].id;
        match client {
            Client::OpenAi => {
                assert_eq!(messages[2]["tool_calls"][0]["id"], json!(call_id));
                assert_eq!(
                    messages[2]["tool_calls"][0]["function"]["arguments"],
                    r#"{"city":"Oslo"}"#
                );
                assert_eq!(
                    messages[3],
                    json!({ "role": "tool", "tool_call_id": call_id, "content": "21.5" })
                );
            }
            Client::Anthropic => {
                assert_eq!(messages[1]["content"][0]["type"], "tool_use");
                assert_eq!(
                    messages[1]["content"][0]["input"],
                    json!({ "city": "Oslo" })
                );
                assert_eq!(
                    messages[2],
                    json!({ "role": "user", "content": [{
                        "type": "tool_result", "tool_use_id": call_id, "content": "21.5", "is_error": false,
                    }] })
                );
            }
        }
    }
}

#[tokio::test]
async fn malformed_arguments_and_an_unknown_tool_reach_the_caller_to_report_back() {
    for client in BOTH {
        let server = serve(Script::new([Reply::tool_calls([
            ("weather", json!({ "town": "Oslo" })),
            ("teleport", json!({ "to": "Oslo" })),
        ])]))
        .await;
        let answer = call(&server, client, "k", weather_request()).await.unwrap();
        let err = answer.tool_calls[0].decode::<City>().unwrap_err();
        assert!(
            err.to_string().contains("missing field `city`"),
            "{client:?}: {err}"
        );
        assert_eq!(answer.tool_calls[1].name, "teleport", "{client:?}");

        let server = serve(Script::new([Reply::malformed_call(
            "weather",
            r#"{"city": "Os"#,
        )]))
        .await;
        let answer = call(&server, client, "k", weather_request()).await.unwrap();
        assert_eq!(answer.tool_calls.len(), 1, "{client:?}");
        let err = answer.tool_calls[0].decode::<City>().unwrap_err();
        assert_eq!(err.tool(), "weather");
        assert_eq!(err.call_id(), answer.tool_calls[0].id);
    }
}

/// A model may answer with nothing at all (Claude's `end_turn` with no content block), and an
/// agent re-asks with that answer in the conversation. Neither API takes such a turn back:
/// Chat Completions refuses an assistant `content: null` without `tool_calls` ("Invalid value
/// for 'content': expected a string, got null"), and the Messages API a turn whose content is
/// empty ("all messages must have non-empty content except for the optional final assistant
/// message"). Each client sent it as it was, so the re-ask failed with a permanent 400.
#[tokio::test]
async fn an_empty_answer_in_the_conversation_is_sent_as_each_api_takes_it() {
    for client in BOTH {
        let server = serve(Script::new([Reply::text("ok"), Reply::text("ok")])).await;
        let request = ChatRequest::new()
            .user("Weather in Oslo?")
            .message(Message::Assistant {
                content: None,
                tool_calls: Vec::new(),
            })
            .user("Answer again.");

        call(&server, client, "k-empty", request).await.unwrap();

        let body = &server.requests()[0].body;
        let messages = body["messages"].as_array().unwrap();
        match client {
            Client::OpenAi => {
                for message in messages {
                    assert!(
                        message["content"].is_string() || message.get("tool_calls").is_some(),
                        "{client:?}: {message}"
                    );
                }
            }
            Client::Anthropic => {
                for message in messages {
                    let content = message["content"].as_array().unwrap();
                    assert!(!content.is_empty(), "{client:?}: {message}");
                }
                for pair in messages.windows(2) {
                    assert_ne!(pair[0]["role"], pair[1]["role"], "{client:?}: {body}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failures.

#[tokio::test]
async fn a_429_with_retry_after_is_retried_after_the_wait() {
    for client in BOTH {
        let server = serve(
            Script::new([Reply::text("fine")]).faults_per_key([Reply::status(429).retry_after(1)]),
        )
        .await;

        let answer = call(&server, client, "k-429", ChatRequest::new().user("hi"))
            .await
            .unwrap();

        assert_eq!(answer.content.as_deref(), Some("fine"));
        let seen = server.requests();
        assert_eq!(server.requests_for("k-429"), 2, "{client:?}");
        // The backoff alone would wait at most 1 ms: only Retry-After explains a 1 s gap.
        let gap = seen[1].at - seen[0].at;
        assert!(
            gap >= Duration::from_secs(1),
            "{client:?}: retried after {gap:?}"
        );
    }
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_idempotency_key() {
    for client in BOTH {
        let server = serve(
            Script::new([Reply::text("fine")])
                .faults_per_key([Reply::status(500), Reply::status(503)]),
        )
        .await;

        let answer = call(&server, client, "k-500", ChatRequest::new().user("hi"))
            .await
            .unwrap();

        assert_eq!(answer.content.as_deref(), Some("fine"));
        assert_eq!(server.requests_for("k-500"), 3, "{client:?}");
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.idempotency_key.as_deref() == Some("k-500"))
        );
        // Forgetting the requests keeps their counts.
        server.forget_requests();
        assert!(server.requests().is_empty());
        assert_eq!(server.requests_for("k-500"), 3, "{client:?}");
    }
}

#[tokio::test]
async fn faults_on_one_turn_leave_the_others_alone() {
    for client in BOTH {
        let server = serve(
            Script::new([
                Reply::tool_call("weather", json!({ "city": "Oslo" })),
                Reply::text("done"),
            ])
            .faults_on_turn(1, [Reply::status(500), Reply::status(429).retry_after(0)]),
        )
        .await;
        let mut request = weather_request();

        let first = call(&server, client, "turn-0", request.clone())
            .await
            .unwrap();
        request.messages.push(first.message());
        request
            .messages
            .push(Message::tool_result(&first.tool_calls[0], "21.5"));
        let second = call(&server, client, "turn-1", request).await.unwrap();

        assert_eq!(second.content.as_deref(), Some("done"), "{client:?}");
        assert_eq!(server.requests_for("turn-0"), 1, "{client:?}");
        assert_eq!(server.requests_for("turn-1"), 3, "{client:?}");
    }
}

#[tokio::test]
async fn a_model_that_keeps_failing_gives_up() {
    for client in BOTH {
        let server = serve(Script::new([Reply::text("never")]).faults_per_key([
            Reply::status(500),
            Reply::status(500),
            Reply::status(500),
        ]))
        .await;

        let err = call(&server, client, "k", ChatRequest::new().user("hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(err, CallError::GaveUp { attempts: 3, .. }),
            "{client:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn malformed_json_from_the_server_is_a_typed_error_not_retried() {
    for client in BOTH {
        for body in ["{ not json", r#"{"unexpected": true}"#] {
            let server = serve(Script::new([Reply::body(200, body)])).await;

            let err = call(&server, client, "k", ChatRequest::new().user("hi"))
                .await
                .unwrap_err();

            assert!(
                matches!(err, CallError::Rejected { attempt: 1, .. }),
                "{client:?}: {err:?}"
            );
            let Some(ModelError::MalformedResponse { why, .. }) = model_error(&err) else {
                panic!("{client:?}: no ModelError under {err:?}");
            };
            assert!(
                why.contains("not valid JSON") || why.contains("missing field"),
                "{client:?}: {why}"
            );
            assert_eq!(server.requests().len(), 1);
        }
    }
}

#[test]
fn a_client_is_a_model_and_a_tool() {
    fn model<M: Model>(m: &M) -> (&str, &str) {
        (m.provider(), m.model())
    }
    let openai = OpenAiChat::new("http://127.0.0.1:9/v1", "llama3.2")
        .unwrap()
        .provider_name("ollama");
    assert_eq!(model(&openai), ("ollama", "llama3.2"));
    let anthropic = AnthropicMessages::new("http://127.0.0.1:9/v1", "claude-sonnet-4-5").unwrap();
    assert_eq!(model(&anthropic), ("anthropic", "claude-sonnet-4-5"));
    assert_eq!(<OpenAiChat as Tool>::NAME, "openai_chat");
    assert_eq!(<AnthropicMessages as Tool>::NAME, "anthropic_messages");
}

#[test]
fn requests_and_responses_round_trip_through_json() {
    let call = ToolCall::new("call_1", "weather", r#"{"city":"Oslo"}"#);
    let request = weather_request()
        .message(Message::Assistant {
            content: None,
            tool_calls: vec![call.clone()],
        })
        .message(Message::tool_error(&call, "unknown city"));
    let json = serde_json::to_value(&request).unwrap();
    assert_eq!(json["messages"][3]["role"], "tool");
    assert_eq!(json["messages"][3]["is_error"], true);
    assert_eq!(
        serde_json::from_value::<ChatRequest>(json).unwrap(),
        request
    );

    let response = ChatResponse::new(
        None,
        vec![call],
        FinishReason::Other("pause_turn".into()),
        Some(Usage {
            input_tokens: 1,
            output_tokens: 2,
        }),
    );
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["finish_reason"], json!({ "other": "pause_turn" }));
    assert_eq!(
        serde_json::from_value::<ChatResponse>(json).unwrap(),
        response
    );
}
