use std::borrow::Cow;

/// What a model client found wrong with a request or an answer, beyond HTTP: the source of
/// the (permanent) [`ToolError`](crate::tool::ToolError) a model call fails with, reachable
/// through [`std::error::Error::source`].
///
/// Messages never quote the answer's body (it holds the conversation) nor any credential.
///
/// ```
/// use flow_runtime::model::ModelError;
///
/// let err = ModelError::MalformedResponse {
///     provider: "openai".into(),
///     format: "Chat Completions",
///     why: "it is not valid JSON at line 1 column 2".into(),
/// };
/// assert_eq!(
///     err.to_string(),
///     "the openai server's answer is not a Chat Completions response: it is not valid JSON \
///      at line 1 column 2; check the client's base URL and that the server speaks this API"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A successful (2xx) answer whose body is not the API's response format.
    #[error(
        "the {provider} server's answer is not a {format} response: {why}; check the \
         client's base URL and that the server speaks this API"
    )]
    MalformedResponse {
        /// The provider (`gen_ai.provider.name`).
        provider: Cow<'static, str>,
        /// The API expected: `Chat Completions` or `Messages`.
        format: &'static str,
        /// What does not fit, by position or by field, never by content.
        why: String,
    },
    /// The request cannot be written in the provider's format.
    #[error("the request cannot be sent to {provider}: {why}")]
    InvalidRequest {
        /// The provider (`gen_ai.provider.name`).
        provider: Cow<'static, str>,
        /// What is wrong and how to fix it.
        why: String,
    },
}

impl ModelError {
    /// The error for a body that does not decode, described as `HttpJson` describes such
    /// bodies: by kind and position only, since serde_json's own message may quote the body.
    pub(crate) fn malformed(
        provider: Cow<'static, str>,
        format: &'static str,
        error: &serde_json::Error,
    ) -> Self {
        let (line, column) = (error.line(), error.column());
        let why = match error.classify() {
            serde_json::error::Category::Data if error.to_string().starts_with("missing field") => {
                // "missing field `choices` at line 1 column 30": names a field, not data.
                error.to_string()
            }
            serde_json::error::Category::Data => {
                format!("it does not have the expected shape at line {line} column {column}")
            }
            serde_json::error::Category::Eof => {
                format!("it ends early at line {line} column {column}")
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                format!("it is not valid JSON at line {line} column {column}")
            }
        };
        Self::MalformedResponse {
            provider,
            format,
            why,
        }
    }

    /// The permanent tool error that carries this error as its source.
    pub(crate) fn into_tool_error(self) -> crate::tool::ToolError {
        crate::tool::ToolError::permanent(self.to_string()).with_source(self)
    }
}
