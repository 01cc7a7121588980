//! JSON over HTTP for tools: [`HttpJson`] makes one request the way a tool's attempt should.
//!
//! A [`Tool`](crate::tool::Tool) built on [`HttpJson`] sends the call's credential and
//! idempotency key with every request, and turns every answer into a result or a correctly
//! classified [`ToolError`]: a 503 with `Retry-After` becomes a transient error that carries
//! the wait, a 400 a permanent one with the status and the start of the body, a dropped
//! connection a transient one. Retries, timeouts and limits stay with the tool's
//! [`ToolPolicy`](crate::tool::ToolPolicy).
//!
//! Plain HTTP only unless flow-runtime's `rustls` feature is on: no TLS stack is compiled in by
//! default, since most tools in tests and examples talk to loopback.

use crate::tool::{ExposeSecret as _, Redactor, ToolCtx, ToolError};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::time::Duration;

/// How much of an error response's body goes into the error message, in characters.
const SNIPPET_CHARS: usize = 200;

/// How much of an error response's body is read to find the snippet, in bytes: enough for
/// [`SNIPPET_CHARS`] characters of any UTF-8, after collapsing some whitespace.
const SNIPPET_READ_BYTES: usize = 4 * SNIPPET_CHARS + 256;

/// How many redirects the default client follows, all within the base URL's origin.
const MAX_REDIRECTS: usize = 5;

/// The largest successful answer [`HttpJson`] reads unless told otherwise: 10 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 10 * 1024 * 1024;

/// A JSON-over-HTTP client for writing tools: one method call per attempt, with the
/// credential, the idempotency key and the failure classification done for you.
///
/// Every request
///
/// - goes to a path under the base URL given to [`new`](HttpJson::new) (`"search"` and
///   `"/search"` under `http://host/v1` both mean `http://host/v1/search`; a path that would
///   lead elsewhere, such as `"../admin"` or `"http://other/"`, is a permanent error);
/// - carries the policy's credential ([`ToolCtx::auth_header`], marked sensitive so that the
///   client never logs it), an `Idempotency-Key` header with [`ToolCtx::idempotency_key`],
///   `Accept: application/json`, and for [`post`](HttpJson::post) and [`put`](HttpJson::put) a
///   JSON body.
///
/// Every answer is classified:
///
/// | answer                                          | result                                           |
/// |-------------------------------------------------|--------------------------------------------------|
/// | 2xx                                             | the body decoded as JSON (an empty body as `null`, so `()` and `Option` fit) |
/// | 2xx whose body does not decode                  | permanent error                                  |
/// | 2xx whose body is larger than [`max_response_body`](HttpJson::max_response_body) (10 MiB by default) | permanent error, whose source is [`ResponseTooLarge`]; the body is read as it streams in and abandoned at the limit, never buffered whole |
/// | 408, 425, 429, 5xx                              | transient error, with the `Retry-After` wait if there is one (in seconds or as an HTTP date) |
/// | any other status (4xx, a redirect not followed) | permanent error                                  |
/// | no connection, a timeout, a broken answer       | transient error                                  |
///
/// Error messages name the method and the URL's path (never its query, which may hold keys,
/// nor any header), the status, and the first 200 characters of an error response's body, e.g.
/// `POST /v1/search answered 400 Bad Request: {"error":"empty query"}`. The body of a
/// successful answer, which holds the service's real data, never goes into a message.
///
/// Cloning is cheap and shares the connection pools.
///
/// ```
/// use flow_runtime::tool::http::HttpJson;
/// use flow_runtime::tool::{Tool, ToolCtx, ToolError};
/// use flow_runtime::{JsonSchema, schemars};
/// use serde::{Deserialize, Serialize};
///
/// /// Searches the company wiki.
/// struct WikiSearch {
///     api: HttpJson,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema)]
/// struct Query {
///     /// What to look for.
///     q: String,
///     /// At most this many hits.
///     limit: Option<u32>,
/// }
///
/// #[derive(Serialize, Deserialize, JsonSchema)]
/// struct Hits {
///     titles: Vec<String>,
/// }
///
/// impl Tool for WikiSearch {
///     type Input = Query;
///     type Output = Hits;
///     const NAME: &'static str = "wiki_search";
///     const DESCRIPTION: &'static str = "Searches the company wiki.";
///
///     async fn call(&self, ctx: &ToolCtx, input: Query) -> Result<Hits, ToolError> {
///         // GET http://wiki.internal:8080/api/search?q=…&limit=…
///         self.api.get(ctx, "search", &input).await
///     }
/// }
///
/// let api = HttpJson::new("http://wiki.internal:8080/api")?;
/// assert_eq!(api.base_url().as_str(), "http://wiki.internal:8080/api/");
/// let search = WikiSearch { api };
/// # let _ = search;
///
/// // A mistyped base URL fails here, not at the first call.
/// let err = HttpJson::new("wiki.internal/api").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid base URL `wiki.internal/api`: relative URL without a base"
/// );
/// # Ok::<(), flow_runtime::tool::http::HttpJsonError>(())
/// ```
///
/// Call the tool through a [`PolicyTool`](crate::tool::PolicyTool) to have its transient
/// failures retried, its `Retry-After` honoured and its credential sent.
///
/// `Debug` shows the base URL and the body limit, not the client: a reqwest client's `Debug`
/// prints its default headers, where a client given to [`HttpJson::with_client`] may hold a
/// credential.
#[derive(Clone)]
pub struct HttpJson {
    client: reqwest::Client,
    /// The client of requests other than `GET` and `HEAD`: `new`'s follows only the redirects
    /// that resend a request as it was (307, 308); `with_client`'s is the caller's client.
    resending: reqwest::Client,
    /// Always ends in `/`, has no query, fragment or credentials.
    base: Url,
    max_body: usize,
}

impl fmt::Debug for HttpJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpJson")
            .field("base", &self.base.as_str())
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// A successful answer was larger than [`HttpJson::max_response_body`]: the source of the
/// (permanent) [`ToolError`] such an answer gives. Its body was read only up to the limit.
///
/// ```
/// use flow_runtime::tool::http::ResponseTooLarge;
///
/// let err = ResponseTooLarge::new(1024);
/// assert_eq!(err.limit(), 1024);
/// assert_eq!(
///     err.to_string(),
///     "the response body is larger than the 1024 bytes allowed; raise the limit with \
///      `HttpJson::max_response_body`"
/// );
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "the response body is larger than the {limit} bytes allowed; raise the limit with \
     `HttpJson::max_response_body`"
)]
pub struct ResponseTooLarge {
    limit: usize,
}

impl ResponseTooLarge {
    /// The error for a body over `limit` bytes.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }

    /// The limit the body went over, in bytes.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// [`HttpJson::new`] or [`HttpJson::with_client`] was given a base URL it cannot use, or the
/// HTTP client could not be built.
///
/// ```
/// use flow_runtime::tool::http::{HttpJson, HttpJsonError};
///
/// let err = HttpJson::new("ftp://files.internal/").unwrap_err();
/// assert!(matches!(err, HttpJsonError::UnsupportedScheme { .. }));
/// assert_eq!(
///     err.to_string(),
///     "base URL scheme `ftp` is not supported; expected `http` or `https`"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpJsonError {
    /// The base URL does not parse.
    #[error("invalid base URL `{url}`: {source}")]
    InvalidUrl {
        /// The URL as given, with what may hold a secret masked: a username and password
        /// (before `@`) and the query and fragment become `…`.
        url: String,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The base URL's scheme is not `http` or `https`.
    #[error("base URL scheme `{scheme}` is not supported; expected `http` or `https`")]
    UnsupportedScheme {
        /// The scheme given.
        scheme: String,
    },
    /// The base URL is `https`, but flow-runtime was built without a TLS backend, so every
    /// request would fail to connect.
    #[error(
        "base URL `{url}` is https, but flow-runtime was built without TLS: enable its \
         `rustls` feature, or pass a client that has TLS to `HttpJson::with_client`"
    )]
    HttpsWithoutTls {
        /// The URL as given, masked as for [`InvalidUrl`](HttpJsonError::InvalidUrl).
        url: String,
    },
    /// The base URL holds a username or password. It is not repeated here, nor anywhere else.
    #[error(
        "the base URL holds a username or password; declare the credential in the tool's \
         policy instead (`Auth::basic`)"
    )]
    Credentials,
    /// The base URL has a query string or a fragment, which requests' paths could not extend.
    /// It is not repeated here, since a query may hold a key.
    #[error(
        "the base URL has a query string or a fragment; give query parameters to each \
         request (`HttpJson::get`), and credentials to the tool's policy (`Auth`)"
    )]
    QueryOrFragment,
    /// The HTTP client could not be built (its TLS backend could not start).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl HttpJson {
    /// A client for the API at `base_url`, with a connection pool of its own.
    ///
    /// The client follows redirects only within the base URL's origin (at most 5), so that a
    /// credential in a custom header (`x-api-key`) never travels to another host; a redirect
    /// elsewhere is answered as a permanent error. A request other than `GET` and `HEAD`
    /// follows only a 307 or 308, which resends it as it was: after a 301, 302 or 303 it would
    /// go on as a `GET` without its body, whose answer would pass for its own, so such an
    /// answer is a permanent error too. It has no timeout of its own: the tool's
    /// [`ToolPolicy`](crate::tool::ToolPolicy) has one.
    ///
    /// # Errors
    ///
    /// `base_url` does not parse, is not `http` or `https`, holds credentials, a query or a
    /// fragment, or is `https` while flow-runtime was built without its `rustls` feature.
    pub fn new(base_url: &str) -> Result<Self, HttpJsonError> {
        let base = parse_base(base_url)?;
        if base.scheme() == "https" && !cfg!(feature = "rustls") {
            return Err(HttpJsonError::HttpsWithoutTls {
                url: crate::tool::masked_url(base_url),
            });
        }
        let client = |redirects| {
            reqwest::Client::builder()
                .user_agent(concat!("flow-runtime/", env!("CARGO_PKG_VERSION")))
                .redirect(redirects)
                .build()
                .map_err(HttpJsonError::Client)
        };
        Ok(Self {
            client: client(same_origin_redirects())?,
            resending: client(same_origin_redirects_keeping_method())?,
            base,
            max_body: DEFAULT_MAX_RESPONSE_BODY,
        })
    }

    /// A client for the API at `base_url` that sends its requests with `client`: to set
    /// timeouts, proxies, TLS roots or a redirect policy of your own, or to share one
    /// connection pool between tools.
    ///
    /// `client`'s redirect policy applies as it is. reqwest's default follows redirects to
    /// other hosts and drops only the standard credential headers (`Authorization`, `Cookie`)
    /// on the way, so an API key in a custom header would go along: use
    /// `reqwest::redirect::Policy::none()` with such credentials.
    ///
    /// # Errors
    ///
    /// `base_url` does not parse, is not `http` or `https`, or holds credentials, a query or a
    /// fragment. An `https` URL is accepted whatever features are on: whether `client` can
    /// speak TLS is its own affair.
    pub fn with_client(client: reqwest::Client, base_url: &str) -> Result<Self, HttpJsonError> {
        Ok(Self {
            resending: client.clone(),
            client,
            base: parse_base(base_url)?,
            max_body: DEFAULT_MAX_RESPONSE_BODY,
        })
    }

    /// The same client, reading successful answers of at most `bytes` bytes (10 MiB by
    /// default, [`DEFAULT_MAX_RESPONSE_BODY`]). A larger answer is a permanent error whose
    /// source is [`ResponseTooLarge`], found from its `Content-Length` before reading, or
    /// while its body streams in, as soon as it goes over: it is never buffered whole.
    ///
    /// ```
    /// use flow_runtime::tool::http::HttpJson;
    ///
    /// let api = HttpJson::new("http://localhost:9/v2")?.max_response_body(64 * 1024);
    /// assert_eq!(api.response_body_limit(), 64 * 1024);
    /// # Ok::<(), flow_runtime::tool::http::HttpJsonError>(())
    /// ```
    #[must_use]
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The largest successful answer this client reads, in bytes.
    #[must_use]
    pub fn response_body_limit(&self) -> usize {
        self.max_body
    }

    /// The base URL, ending in `/`.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The HTTP client (of `GET` and `HEAD` requests, when made by [`new`](HttpJson::new)).
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `GET path?query`, decoding the answer as `O`.
    ///
    /// `query` is anything that serialises to a JSON object of scalars (a struct, a map:
    /// `None` fields are left out, lists repeat the parameter) or a list of pairs
    /// (`&[("q", "rust")]`); `&()` for none.
    ///
    /// # Errors
    ///
    /// As the table on [`HttpJson`] says; also permanent when `path` leads outside
    /// the base URL or `query` does not fit in a query string.
    pub async fn get<Q, O>(&self, ctx: &ToolCtx, path: &str, query: &Q) -> Result<O, ToolError>
    where
        Q: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let request = self.request_with_query(ctx, Method::GET, path, query)?;
        self.send(request).await
    }

    /// `DELETE path?query`, decoding the answer as `O` (`()` for an empty one). `query` as for
    /// [`get`](HttpJson::get).
    ///
    /// # Errors
    ///
    /// As [`get`](HttpJson::get).
    pub async fn delete<Q, O>(&self, ctx: &ToolCtx, path: &str, query: &Q) -> Result<O, ToolError>
    where
        Q: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let request = self.request_with_query(ctx, Method::DELETE, path, query)?;
        self.send(request).await
    }

    /// `POST path` with `body` as JSON, decoding the answer as `O`.
    ///
    /// # Errors
    ///
    /// As [`get`](HttpJson::get); also permanent when `body` does not serialise.
    pub async fn post<I, O>(&self, ctx: &ToolCtx, path: &str, body: &I) -> Result<O, ToolError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let request = self.request_with_body(ctx, Method::POST, path, body)?;
        self.send(request).await
    }

    /// `PUT path` with `body` as JSON, decoding the answer as `O`.
    ///
    /// # Errors
    ///
    /// As [`post`](HttpJson::post).
    pub async fn put<I, O>(&self, ctx: &ToolCtx, path: &str, body: &I) -> Result<O, ToolError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let request = self.request_with_body(ctx, Method::PUT, path, body)?;
        self.send(request).await
    }

    /// A request to `path` with the credential, idempotency key and `Accept` headers already
    /// set, for what the shortcuts do not cover (another method, headers of your own, a
    /// per-request timeout). Send it with [`send`](HttpJson::send) to have the answer
    /// classified.
    ///
    /// ```
    /// use flow_runtime::tool::http::HttpJson;
    /// use flow_runtime::tool::{IdempotencyKey, ToolCtx};
    /// use reqwest::Method;
    ///
    /// let api = HttpJson::new("http://localhost:9/v2")?;
    /// let ctx = ToolCtx::new("patch_ticket", IdempotencyKey::from("k-1"));
    ///
    /// let request = api
    ///     .request(&ctx, Method::PATCH, "tickets/42")?
    ///     .header("x-trace", "on")
    ///     .json(&serde_json::json!({ "status": "closed" }))
    ///     .build()?;
    /// assert_eq!(request.url().as_str(), "http://localhost:9/v2/tickets/42");
    /// assert_eq!(request.headers()["idempotency-key"], "k-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Permanent: `path` leads outside the base URL, or the credential or the idempotency key
    /// is not a valid header value.
    pub fn request(
        &self,
        ctx: &ToolCtx,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, ToolError> {
        let url = self.url(path)?;
        self.prepare(ctx, method, url)
    }

    /// Sends `request` and classifies the answer as the table on [`HttpJson`] says,
    /// decoding a success as `O`.
    ///
    /// # Errors
    ///
    /// As the table says; also permanent when `request` cannot be built (a header value of
    /// your own that is not valid, say).
    pub async fn send<O: DeserializeOwned>(&self, request: RequestBuilder) -> Result<O, ToolError> {
        answer(self.execute(request).await?, self.max_body).await
    }

    /// Sends `request` and classifies the answer as [`send`](HttpJson::send) does, but hands
    /// back a successful answer's body as it came, for a caller that decodes it itself (the
    /// model clients, whose decoding errors are typed).
    ///
    /// # Errors
    ///
    /// As [`send`](HttpJson::send), except that the body is not decoded.
    pub async fn send_raw(&self, request: RequestBuilder) -> Result<Vec<u8>, ToolError> {
        answer_bytes(self.execute(request).await?, self.max_body).await
    }

    /// Builds and sends `request`; returns what it was, the secrets it carried and the answer.
    async fn execute(&self, request: RequestBuilder) -> Result<Sent, ToolError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| {
            ToolError::permanent("the HTTP request could not be built").with_source(e.without_url())
        })?;
        let what = format!("{} {}", request.method(), request.url().path());
        let secrets = request_secrets(&request);
        let response = client
            .execute(request)
            .await
            .map_err(|e| send_error(&what, e))?;
        Ok(Sent {
            what,
            secrets,
            response,
        })
    }

    fn request_with_query<Q: Serialize + ?Sized>(
        &self,
        ctx: &ToolCtx,
        method: Method,
        path: &str,
        query: &Q,
    ) -> Result<RequestBuilder, ToolError> {
        let mut url = self.url(path)?;
        append_query(&method, &mut url, query)?;
        self.prepare(ctx, method, url)
    }

    fn request_with_body<I: Serialize + ?Sized>(
        &self,
        ctx: &ToolCtx,
        method: Method,
        path: &str,
        body: &I,
    ) -> Result<RequestBuilder, ToolError> {
        let url = self.url(path)?;
        // Serialised here rather than by `RequestBuilder::json`, which would report a failure
        // only as an opaque "builder error" at send time.
        let body = serde_json::to_vec(body).map_err(|e| {
            ToolError::permanent(format!(
                "{method} {}: the request body does not serialise to JSON",
                url.path()
            ))
            .with_source(e)
        })?;
        Ok(self
            .prepare(ctx, method, url)?
            .header(CONTENT_TYPE, "application/json")
            .body(body))
    }

    /// `path` under the base URL, or a permanent error if it leads anywhere else.
    fn url(&self, path: &str) -> Result<Url, ToolError> {
        // Relative to the base's path whether or not it starts with `/`; stripping every
        // leading `/` also turns a scheme-relative `//other.host/` into a plain path.
        let relative = path.trim_start_matches('/');
        let shown = path.split(['?', '#']).next().unwrap_or_default();
        let url = self.base.join(relative).map_err(|e| {
            ToolError::permanent(format!("`{shown}` is not a valid URL path")).with_source(e)
        })?;
        if !url.as_str().starts_with(self.base.as_str()) {
            return Err(ToolError::permanent(format!(
                "path `{shown}` leads outside the base URL's path `{}`",
                self.base.path()
            )));
        }
        Ok(url)
    }

    fn prepare(
        &self,
        ctx: &ToolCtx,
        method: Method,
        url: Url,
    ) -> Result<RequestBuilder, ToolError> {
        let key = HeaderValue::from_str(ctx.idempotency_key().as_str()).map_err(|_| {
            ToolError::permanent("the idempotency key is not a valid HTTP header value")
        })?;
        let client = if matches!(method, Method::GET | Method::HEAD) {
            &self.client
        } else {
            &self.resending
        };
        let mut request = client
            .request(method, url)
            .header(ACCEPT, "application/json")
            .header("idempotency-key", key);
        if let Some(auth) = ctx.auth_header() {
            let name = HeaderName::from_bytes(auth.name().as_bytes()).map_err(|_| {
                ToolError::permanent(format!(
                    "the credential's header name `{}` is not a valid HTTP header name",
                    auth.name()
                ))
            })?;
            // The value is not repeated: it is the secret.
            let mut value = HeaderValue::from_str(auth.value().expose_secret()).map_err(|_| {
                ToolError::permanent(
                    "the credential is not a valid HTTP header value (does it hold a line break?)",
                )
            })?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        Ok(request)
    }
}

/// The redirect policy of the clients flow makes for `GET` and `HEAD` (`HttpJson::new`):
/// follow at most [`MAX_REDIRECTS`] redirects, each within the first request's origin, so that a
/// credential in a custom header (`x-api-key`), which reqwest does not strip on the way as it
/// does `Authorization` and `Cookie`, never travels to another host. A redirect elsewhere is
/// not followed: the 3xx is the answer.
pub(crate) fn same_origin_redirects() -> reqwest::redirect::Policy {
    same_origin_redirects_if(|_| true)
}

/// [`same_origin_redirects`] for the other methods (`HttpJson::new`, `Webhook::new`): only 307
/// and 308 are followed, which resend the method and the body. reqwest goes on with a `GET`
/// without the body after a 301, 302 or 303 to a `POST`, and after a 303 to any method (RFC 9110
/// lets a client), and that `GET`'s answer would pass for the request's; the 3xx is the answer
/// instead.
pub(crate) fn same_origin_redirects_keeping_method() -> reqwest::redirect::Policy {
    same_origin_redirects_if(|status| {
        matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        )
    })
}

fn same_origin_redirects_if(
    follows: impl Fn(StatusCode) -> bool + Send + Sync + 'static,
) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS && follows(attempt.status()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Parses and normalises a base URL: `http` or `https`, no credentials, no query or fragment,
/// a path ending in `/` so that request paths extend it.
fn parse_base(base_url: &str) -> Result<Url, HttpJsonError> {
    let mut url = Url::parse(base_url).map_err(|source| HttpJsonError::InvalidUrl {
        url: crate::tool::masked_url(base_url),
        source: source.into(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpJsonError::UnsupportedScheme {
            scheme: url.scheme().to_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpJsonError::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(HttpJsonError::QueryOrFragment);
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Appends `query` to `url`'s query string: a JSON object of scalars or lists of scalars, or
/// a list of `[name, value]` pairs.
fn append_query<Q: Serialize + ?Sized>(
    method: &Method,
    url: &mut Url,
    query: &Q,
) -> Result<(), ToolError> {
    let shown = url.path().to_owned();
    let invalid = |why: String| ToolError::permanent(format!("{method} {shown}: {why}"));
    let value = serde_json::to_value(query)
        .map_err(|e| invalid("the query does not serialise".to_owned()).with_source(e))?;
    let pairs: Vec<(String, serde_json::Value)> = match value {
        serde_json::Value::Null => return Ok(()),
        serde_json::Value::Object(map) => map.into_iter().collect(),
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::Array(pair) => match <[_; 2]>::try_from(pair) {
                    Ok([serde_json::Value::String(name), value]) => Ok((name, value)),
                    _ => Err(()),
                },
                _ => Err(()),
            })
            .collect::<Result<_, ()>>()
            .map_err(|()| {
                invalid("a query given as a list must be a list of (name, value) pairs".to_owned())
            })?,
        other => {
            return Err(invalid(format!(
                "the query must serialise to an object (a struct or a map) or a list of pairs, \
                 not {}",
                kind(&other)
            )));
        }
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let scalar = |value: serde_json::Value| match value {
            serde_json::Value::String(s) => Ok(Some(s)),
            serde_json::Value::Number(n) => Ok(Some(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
            serde_json::Value::Null => Ok(None),
            other => Err(invalid(format!(
                "query parameter `{name}` is {}, which does not fit in a query string",
                kind(&other)
            ))),
        };
        match value {
            serde_json::Value::Array(items) => {
                for item in items {
                    if let Some(text) = scalar(item)? {
                        out.push((name.clone(), text));
                    }
                }
            }
            value => {
                if let Some(text) = scalar(value)? {
                    out.push((name, text));
                }
            }
        }
    }
    if !out.is_empty() {
        url.query_pairs_mut().extend_pairs(out);
    }
    Ok(())
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A request sent: what it was (`POST /v1/x`), the secrets it carried, and the answer.
struct Sent {
    what: String,
    secrets: Redactor,
    response: Response,
}

/// Classifies an error from sending a request (no answer came back).
fn send_error(what: &str, error: reqwest::Error) -> ToolError {
    // reqwest puts the URL, query included, in its messages.
    let error = error.without_url();
    let (transient, why) = if error.is_builder() {
        (false, "the request could not be built")
    } else if error.is_redirect() {
        (false, "too many redirects")
    } else if error.is_connect() {
        (true, "could not connect")
    } else if error.is_timeout() {
        (true, "timed out")
    } else {
        (true, "the request failed")
    };
    let message = format!("{what}: {why}");
    let classified = if transient {
        ToolError::transient(message)
    } else {
        ToolError::permanent(message)
    };
    classified.with_source(error)
}

/// Classifies an answer: decodes a success, turns anything else into an error. A successful
/// body is read chunk by chunk and refused as soon as it goes over `max_body` bytes.
async fn answer<O: DeserializeOwned>(sent: Sent, max_body: usize) -> Result<O, ToolError> {
    let status = sent.response.status();
    let what = sent.what.clone();
    let body = answer_bytes(sent, max_body).await?;
    let body: &[u8] = if body.trim_ascii().is_empty() {
        b"null"
    } else {
        &body
    };
    serde_json::from_slice(body).map_err(|e| decode_error::<O>(&what, status, &e))
}

/// Classifies an answer as [`answer`] does, but hands back a success's body undecoded.
async fn answer_bytes(sent: Sent, max_body: usize) -> Result<Vec<u8>, ToolError> {
    let Sent {
        what,
        secrets,
        mut response,
    } = sent;
    let status = response.status();
    if status.is_success() {
        let too_large = || {
            ToolError::permanent(format!(
                "{what} answered {status}, but its body is larger than the {max_body} bytes \
                 this client reads"
            ))
            .with_source(ResponseTooLarge::new(max_body))
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > max_body as u64) {
            return Err(too_large());
        }
        let unreadable = |e: reqwest::Error| {
            ToolError::transient(format!(
                "{what} answered {status}, but its body could not be read"
            ))
            .with_source(e.without_url())
        };
        let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(max_body));
        let mut body = Vec::with_capacity(capacity.min(max_body));
        while let Some(chunk) = response.chunk().await.map_err(unreadable)? {
            if chunk.len() > max_body.saturating_sub(body.len()) {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(body);
    }

    let retry_after = retry_after(response.headers());
    let message = format!(
        "{what} answered {status}{}",
        snippet(response, &secrets).await
    );
    if !is_transient(status) {
        return Err(ToolError::permanent(message));
    }
    let error = ToolError::transient(message);
    Err(match retry_after {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    })
}

/// The message for a successful answer whose body does not decode.
///
/// serde_json's own messages may quote the body ("invalid type: string \"…\""), which holds
/// the service's real data: only a missing field's message, which names the field and nothing
/// of the body, is kept whole; otherwise the kind of failure and its position.
fn decode_error<O>(what: &str, status: StatusCode, error: &serde_json::Error) -> ToolError {
    let expected = std::any::type_name::<O>();
    let (line, column) = (error.line(), error.column());
    let why = match error.classify() {
        serde_json::error::Category::Data if error.to_string().starts_with("missing field") => {
            error.to_string()
        }
        serde_json::error::Category::Data => {
            format!("it does not match `{expected}` at line {line} column {column}")
        }
        serde_json::error::Category::Eof => format!("it ends early at line {line} column {column}"),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            format!("it is not valid JSON at line {line} column {column}")
        }
    };
    ToolError::permanent(format!(
        "{what} answered {status}, but its body is not the expected JSON (`{expected}`): {why}"
    ))
}

/// The wait a `Retry-After` header asks for: delta-seconds, or an HTTP date (a date already
/// past asks for no wait). Any number of seconds is read (up to `u64::MAX`); the retry loop
/// caps what it honours. A value that is neither falls back to the policy's backoff.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Whether an error status may go away by itself: 408, 425, 429 and 5xx. Shared with the
/// webhook output sink.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY | StatusCode::TOO_MANY_REQUESTS
    ) || status.is_server_error()
}

/// `": "` and the start of an error response's body, whitespace collapsed, cut at
/// [`SNIPPET_CHARS`] characters; empty if the body is. The secrets `redactor` knows are taken
/// out of all that was read before it is cut, so that no cut leaves part of one behind: a
/// secret cut through is not found by a later redaction. Shared with the webhook output sink.
pub(crate) async fn snippet(mut response: Response, redactor: &Redactor) -> String {
    // Enough beyond what may be shown to read whole a secret that starts within it.
    let limit = SNIPPET_READ_BYTES + redactor.longest();
    let mut bytes = Vec::new();
    let mut more = false;
    // A body that breaks off yields what came before: the snippet is a hint, not the answer.
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= limit {
            more = true;
            break;
        }
    }
    let text = redactor.text(&String::from_utf8_lossy(&bytes));
    // The body goes on: what was read may end inside a secret.
    let text = if more {
        redactor.cut_partial_end(&text)
    } else {
        &text
    };
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return String::new();
    }
    match collapsed.char_indices().nth(SNIPPET_CHARS) {
        Some((end, _)) => format!(": {}…", &collapsed[..end]),
        None if more => format!(": {collapsed}…"),
        None => format!(": {collapsed}"),
    }
}

/// The secrets a request carries in its headers: the values reqwest marks sensitive (the
/// credential [`HttpJson`] adds, and any `bearer_auth`/`basic_auth` of the caller's own).
fn request_secrets(request: &reqwest::Request) -> Redactor {
    let mut redactor = Redactor::default();
    for value in request.headers().values() {
        if value.is_sensitive()
            && let Ok(value) = value.to_str()
        {
            redactor.add_header_value(value);
        }
    }
    redactor
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn retry_after_is_read_in_seconds_or_as_an_http_date() {
        let wait = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            retry_after(&headers)
        };
        assert_eq!(wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            wait("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(wait("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let ahead = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        let asked = wait(&ahead).unwrap();
        assert!(
            asked > Duration::from_secs(80) && asked <= Duration::from_secs(90),
            "{asked:?}"
        );
        assert_eq!(wait("soon"), None);
        assert_eq!(wait("-1"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn a_query_that_is_not_one_names_the_requests_method() {
        for method in [Method::GET, Method::DELETE] {
            let mut url = Url::parse("http://api.internal/v1/orders").unwrap();
            let error = append_query(&method, &mut url, &42).unwrap_err();
            assert!(!error.is_transient());
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("{method} /v1/orders: the query must serialise")),
                "{message}"
            );
            assert_eq!(url.query(), None, "nothing appended");
        }
    }

    #[test]
    fn debug_does_not_print_the_clients_default_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret-t0ken"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        // The client itself would print it.
        assert!(format!("{client:?}").contains("s3cret-t0ken"));
        let api = HttpJson::with_client(client, "http://api.internal/v1").unwrap();
        let printed = format!("{api:?}");
        assert!(!printed.contains("s3cret-t0ken"), "{printed}");
        assert!(printed.contains("http://api.internal/v1/"), "{printed}");
    }
}
