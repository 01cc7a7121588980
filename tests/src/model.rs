//! Calling the scripted model server through either client, under a policy with a test key.

use flow_runtime::model::scripted::ScriptedModel;
use flow_runtime::model::{AnthropicMessages, ChatRequest, ChatResponse, OpenAiChat};
use flow_runtime::tool::{CallError, Credential, IdempotencyKey, PolicyTool, Retry, ToolPolicy};
use std::time::Duration;

/// The model key the tests send, and search for where it must not be.
pub const KEY: &str = "sk-test-5ecret-model-key";

/// Which client a test runs against: each test runs against both.
#[derive(Clone, Copy, Debug)]
pub enum Client {
    /// `OpenAiChat`, model `scripted-gpt`.
    OpenAi,
    /// `AnthropicMessages`, model `scripted-claude`.
    Anthropic,
}

/// Both clients.
pub const BOTH: [Client; 2] = [Client::OpenAi, Client::Anthropic];

/// A policy with [`KEY`] and quick retries (3 attempts).
#[must_use]
pub fn policy(client: Client) -> ToolPolicy {
    let auth = match client {
        Client::OpenAi => OpenAiChat::auth(Credential::new(KEY)),
        Client::Anthropic => AnthropicMessages::auth(Credential::new(KEY)),
    };
    ToolPolicy::builder()
        .auth(auth)
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .build()
}

/// Calls `server` through `client` under `policy`, with idempotency key `key`; message content
/// is traced when `record_content` is on.
///
/// # Errors
///
/// The call's.
///
/// # Panics
///
/// The server's URL is not one the client takes (it always is).
pub async fn call_with(
    server: &ScriptedModel,
    client: Client,
    policy: ToolPolicy,
    record_content: bool,
    key: &str,
    request: ChatRequest,
) -> Result<ChatResponse, CallError> {
    let key = IdempotencyKey::from(key);
    match client {
        Client::OpenAi => {
            let model = OpenAiChat::new(&server.openai_url(), "scripted-gpt")
                .unwrap()
                .record_content(record_content);
            PolicyTool::new(model, policy).call(&key, request).await
        }
        Client::Anthropic => {
            let model = AnthropicMessages::new(&server.anthropic_url(), "scripted-claude")
                .unwrap()
                .record_content(record_content);
            PolicyTool::new(model, policy).call(&key, request).await
        }
    }
}
