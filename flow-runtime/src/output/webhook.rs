use crate::output::{Delivery, OutputError, Sink};
use crate::tool::{Auth, AuthHeader, ExposeSecret as _, Redactor, ToolError, http};
use base64::Engine as _;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode, Url};
use std::fmt;
use std::time::Duration;

/// Notifies a service: POSTs every delivery to a URL, with an `Idempotency-Key` header.
///
/// The body is the [`Delivery`] record as JSON, or, when the sink is
/// [formatted](crate::output::Sink::formatted), the formatted text with its content type. The
/// answer decides what happens next:
///
/// | answer                                   | delivery                                    |
/// |------------------------------------------|---------------------------------------------|
/// | 2xx                                      | done                                        |
/// | 408, 425, 429, 5xx                       | transient: retried, after `Retry-After` (in seconds or as an HTTP date) when the answer has one, up to [`Outputs::max_retry_after`](crate::output::Outputs::max_retry_after) |
/// | any other status (400, 401, 404, 3xx…)   | permanent: not retried                      |
/// | no answer (connection refused, timeout)  | transient                                   |
///
/// An error answer's message has its status and the first 200 characters of its body (read
/// no further); a successful answer's body is never read.
///
/// The secrets a webhook sends never come back in its errors (nor, therefore, in logs, the
/// run's history or dead letters): the credential of [`auth`](Webhook::auth), in every form
/// it travels in, and the URL's password, path and query are replaced by `[REDACTED]` in an
/// error message, should the receiver echo the request.
///
/// A receiver that honours `Idempotency-Key` acts once however often a delivery is retried or
/// a run resumed. The URL's path and query are never printed (they often hold a token, as in
/// chat webhooks): the sink is named `webhook <scheme://host:port>`, and `Debug` shows the
/// same. With [`auth`](Webhook::auth), the credential is loaded before every attempt and sent
/// as a header marked sensitive.
///
/// Made with a [`reqwest::Client`] of its own, which waits at most 30 s for an answer and
/// follows redirects only within the URL's origin (at most 5), so that a credential in a
/// custom header (`x-api-key`) never travels to another host: a redirect elsewhere is a
/// permanent error. Only a 307 or 308 is followed, which resends the POST with its body; after
/// a 301, 302 or 303 the POST would go on as a GET without the value, so such an answer is a
/// permanent error too (and the value goes to the dead letter). Pass yours with
/// [`client`](Webhook::client) to share connections (its redirect policy then applies as it
/// is: reqwest's default follows redirects to other hosts and drops only `Authorization` and
/// `Cookie` on the way). Either way each attempt has
/// the [`Outputs`](crate::output::Outputs)' timeout (30 s by default) and each delivery its
/// deadline (2 min by default).
///
/// ```
/// use flow_runtime::output::{Format, Outputs, Sink, Webhook};
/// use flow_runtime::tool::{Auth, Credential};
///
/// let hook = Webhook::new("http://hooks.internal:8080/services/T0/B0/s3cret-path")?
///     .auth(Auth::bearer(Credential::from_env("HOOK_TOKEN")));
/// assert_eq!(hook.name(), "webhook http://hooks.internal:8080");
/// assert!(!format!("{hook:?}").contains("s3cret"));
///
/// let outputs = Outputs::new().on_exit(hook.formatted(Format::pretty_json()));
/// # Ok::<(), flow_runtime::output::OutputError>(())
/// ```
pub struct Webhook {
    url: Url,
    name: String,
    client: reqwest::Client,
    auth: Option<Auth>,
    /// The URL's secrets: what to take out of error messages.
    url_secrets: Redactor,
}

/// How long the default client waits for an answer: a delivery must not hang a run forever.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Webhook {
    /// POSTs to `url` (`http`, or `https` with the `rustls` feature).
    ///
    /// # Errors
    ///
    /// [`OutputError::InvalidUrl`] when `url` does not parse, is not `http` or `https`, or is
    /// `https` without the `rustls` feature.
    pub fn new(url: &str) -> Result<Self, OutputError> {
        let url = Url::parse(url).map_err(|e| OutputError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutputError::InvalidUrl {
                reason: format!(
                    "the scheme is `{}`, expected `http` or `https`",
                    url.scheme()
                ),
            });
        }
        if url.scheme() == "https" && !cfg!(feature = "rustls") {
            return Err(OutputError::InvalidUrl {
                reason: "`https` needs the `rustls` feature of flow-runtime (no TLS backend is \
                         compiled in)"
                    .to_owned(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .redirect(http::same_origin_redirects_keeping_method())
            .build()
            .map_err(|e| OutputError::InvalidUrl {
                reason: format!("no HTTP client for it: {e}"),
            })?;
        Ok(Self {
            name: format!("webhook {}", url.origin().ascii_serialization()),
            url_secrets: url_secrets(&url),
            url,
            client,
            auth: None,
        })
    }

    /// The same webhook, sending its requests with `client`.
    #[must_use]
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = client;
        self
    }

    /// The same webhook, sending a credential with every request. See [`Auth`].
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The same webhook, named `name` in records and errors.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("origin", &self.url.origin().ascii_serialization())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, delivery: &Delivery) -> Result<(), ToolError> {
        let header = match &self.auth {
            None => None,
            // The message names where the credential comes from, never the secret.
            Some(auth) => Some(auth.header().map_err(|e| {
                ToolError::permanent(format!(
                    "the webhook's credential ({}) could not be loaded: {e}",
                    auth.credential()
                ))
            })?),
        };
        // The secrets' forms are worked out only when there is an error to clean.
        let secrets = || {
            let mut redactor = self.url_secrets.clone();
            if let Some(header) = &header {
                redactor.add_auth(header);
            }
            redactor
        };
        self.post(delivery, header.as_ref(), secrets)
            .await
            .map_err(|e| e.redacted(&secrets()))
    }
}

impl Webhook {
    /// One POST, with the loaded credential's header when there is one; `secrets` are what an
    /// error's body snippet is cleaned of.
    async fn post(
        &self,
        delivery: &Delivery,
        auth: Option<&AuthHeader>,
        secrets: impl FnOnce() -> Redactor,
    ) -> Result<(), ToolError> {
        let payload = delivery.payload();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, payload.content_type())
            .header("idempotency-key", delivery.idempotency_key().as_str());
        if let Some(header) = auth {
            let mut value =
                HeaderValue::from_str(header.value().expose_secret()).map_err(|_| {
                    ToolError::permanent("the webhook's credential is not a valid header value")
                })?;
            value.set_sensitive(true);
            request = request.header(header.name(), value);
        }
        let response = request
            .body(payload.into_body())
            .send()
            .await
            .map_err(|e| {
                // reqwest's errors print the URL, which may hold a token.
                classify_send_error(&e).with_source(e.without_url())
            })?;
        classify(response, secrets).await
    }
}

/// A path or query value shorter than this is taken for plain data, not a token: taking it out
/// of messages (`?v=1`) would garble them and hide nothing.
const MIN_URL_SECRET: usize = 8;

/// The secrets a webhook URL carries: its password (reqwest sends it, with the username, as
/// basic auth), its path and each segment of it (chat webhooks put their token in one, which a
/// receiver may name alone), its query and each query value (those of at least
/// [`MIN_URL_SECRET`] characters).
fn url_secrets(url: &Url) -> Redactor {
    let mut secrets = Redactor::default();
    if let Some(password) = url.password() {
        secrets.add(password);
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let (user, password) = (decode(url.username()), decode(password));
        secrets.add(&password);
        secrets
            .add(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    }
    let mut add_long = |part: &str| {
        if part.chars().count() >= MIN_URL_SECRET {
            secrets.add(part);
        }
    };
    add_long(url.path());
    for segment in url.path_segments().into_iter().flatten() {
        add_long(segment);
        add_long(&percent_encoding::percent_decode_str(segment).decode_utf8_lossy());
    }
    if let Some(query) = url.query() {
        add_long(query);
        for (_, value) in url.query_pairs() {
            add_long(&value);
        }
    }
    secrets
}

/// A request that could not be built is permanent; one without an answer is transient.
fn classify_send_error(e: &reqwest::Error) -> ToolError {
    if e.is_builder() {
        ToolError::permanent("the webhook request could not be made")
    } else if e.is_timeout() {
        ToolError::transient("the webhook did not answer in time")
    } else {
        ToolError::transient("the webhook could not be reached")
    }
}

/// Classifies an answer, reading the start of an error's body, cleaned of `secrets`, for its
/// message.
async fn classify(response: Response, secrets: impl FnOnce() -> Redactor) -> Result<(), ToolError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let headers = response.headers().clone();
    let snippet = http::snippet(response, &secrets()).await;
    classify_status(status, &headers, &snippet)
}

/// The same classification as [`HttpJson`](crate::tool::http::HttpJson)'s answers; `snippet`
/// (`": "` and the start of the body, or nothing) ends the message.
fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    snippet: &str,
) -> Result<(), ToolError> {
    if status.is_success() {
        return Ok(());
    }
    let message = format!("webhook answered {status}{snippet}");
    if !http::is_transient(status) {
        return Err(ToolError::permanent(message));
    }
    let error = ToolError::transient(message);
    match http::retry_after(headers) {
        Some(wait) => Err(error.with_retry_after(wait)),
        None => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_like_tool_errors() {
        let header = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::RETRY_AFTER,
                HeaderValue::from_static(value),
            );
            headers
        };
        let (seconds, past_date, none) = (
            header("7"),
            header("Wed, 21 Oct 2015 07:28:00 GMT"),
            HeaderMap::new(),
        );
        assert!(classify_status(StatusCode::OK, &none, "").is_ok());
        assert!(classify_status(StatusCode::NO_CONTENT, &none, "").is_ok());
        for status in [408, 425, 429, 500, 502, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            let err = classify_status(status, &seconds, "").unwrap_err();
            assert!(err.is_transient(), "{status}");
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
            // A date already past asks for no wait.
            let err = classify_status(status, &past_date, "").unwrap_err();
            assert_eq!(err.retry_after(), Some(Duration::ZERO));
        }
        for status in [301, 400, 401, 403, 404, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            let err = classify_status(status, &seconds, "").unwrap_err();
            assert!(!err.is_transient(), "{status}");
        }
        assert_eq!(
            classify_status(StatusCode::BAD_REQUEST, &none, ": no such channel")
                .unwrap_err()
                .to_string(),
            "webhook answered 400 Bad Request: no such channel"
        );
    }

    /// Without a TLS backend, reqwest would fail every attempt at `https` as a connection
    /// error, which looks transient: refused when the webhook is made instead.
    #[cfg(not(feature = "rustls"))]
    #[test]
    fn https_without_tls_is_refused_up_front() {
        let err = Webhook::new("https://hooks.example.com/s3cret").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid webhook URL: `https` needs the `rustls` feature of flow-runtime \
             (no TLS backend is compiled in)"
        );
    }

    #[test]
    fn the_url_secrets_are_its_password_path_and_query() {
        let url =
            Url::parse("http://ada:pa%20ss@hooks.internal/T0/s3cret?token=k%2By-0123456").unwrap();
        let secrets = url_secrets(&url);
        let pair = base64::engine::general_purpose::STANDARD.encode("ada:pa ss");
        for shown in [
            "pa ss",
            "pa%20ss",
            pair.as_str(),
            "/T0/s3cret",
            "token=k%2By-0123456",
            "k+y-0123456",
        ] {
            assert!(secrets.finds(&format!("echo {shown} echo")), "{shown}");
        }
        assert!(!secrets.finds("hooks.internal ada"));
        assert!(url_secrets(&Url::parse("http://hooks.internal/").unwrap()).is_empty());
        // Short parts are data, not tokens: `503` stays readable.
        let plain = url_secrets(&Url::parse("http://hooks.internal/h?v=5").unwrap());
        assert!(plain.is_empty());
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert!(Webhook::new("http://127.0.0.1:9/hook").is_ok());
        let err = Webhook::new("ftp://example.com/s3cret").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid webhook URL: the scheme is `ftp`, expected `http` or `https`"
        );
        let err = Webhook::new("not a url").unwrap_err();
        assert!(matches!(err, OutputError::InvalidUrl { .. }));
    }
}
