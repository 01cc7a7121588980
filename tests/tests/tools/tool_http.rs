//! `tool::http::HttpJson` against a real HTTP server on loopback: what each request carries
//! (credential, idempotency key, JSON body, query), how each answer is classified (retried with
//! `Retry-After`, rejected with a snippet of the body, undecodable, no connection), and where a
//! request may not go (outside the base URL, to another origin by redirect, over https without
//! TLS).
//!
//! Each test starts its own axum server with a script of replies (the n-th request gets the
//! n-th reply; the last one repeats), which records every request it sees.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use flow_runtime::state::RunId;
use flow_runtime::tool::http::HttpJson;
use flow_runtime::tool::{
    Auth, CallError, Credential, IdempotencyKey, PolicyTool, Retry, Tool, ToolCtx, ToolError,
    ToolPolicy,
};
use flow_tests::http::{header_text, serve};
use flow_tests::{error_chain, quick_retry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The server.

/// One scripted reply.
#[derive(Clone)]
struct Reply {
    status: StatusCode,
    retry_after: Option<&'static str>,
    location: Option<String>,
    body: String,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status: StatusCode::from_u16(status).unwrap(),
        retry_after: None,
        location: None,
        body: body.to_owned(),
    }
}

fn ok(echo: &str) -> Reply {
    reply(200, &serde_json::json!({ "echo": echo }).to_string())
}

/// One request, as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    api_key: Option<String>,
    idempotency_key: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    body: String,
}

struct Server {
    script: Vec<Reply>,
    seen: Mutex<Vec<Seen>>,
}

impl Server {
    /// Starts a server on an ephemeral loopback port; returns it and its origin
    /// (`http://127.0.0.1:port`).
    async fn start(script: Vec<Reply>) -> (Arc<Self>, String) {
        let server = Arc::new(Self {
            script,
            seen: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&server));
        (server, serve(app).await)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name: &str| header_text(&headers, name);
    let index = {
        let mut seen = server.seen.lock().unwrap();
        seen.push(Seen {
            at: Instant::now(),
            method,
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            authorization: text("authorization"),
            api_key: text("x-api-key"),
            idempotency_key: text("idempotency-key"),
            content_type: text("content-type"),
            accept: text("accept"),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        seen.len() - 1
    };
    let reply = &server.script[index.min(server.script.len() - 1)];
    let mut response = (reply.status, reply.body.clone()).into_response();
    let headers = response.headers_mut();
    if let Some(wait) = reply.retry_after {
        headers.insert(header::RETRY_AFTER, wait.parse().unwrap());
    }
    if let Some(location) = &reply.location {
        headers.insert(header::LOCATION, location.parse().unwrap());
    }
    response
}

// ---------------------------------------------------------------------------------------------
// The tool: one line of HttpJson per attempt.

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
struct Ask {
    text: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
struct Answer {
    echo: String,
}

/// POSTs its input to `echo` under the API's base URL.
struct Echo {
    api: HttpJson,
}

impl Tool for Echo {
    type Input = Ask;
    type Output = Answer;
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Echoes a text through the test server.";

    async fn call(&self, ctx: &ToolCtx, input: Ask) -> Result<Answer, ToolError> {
        self.api.post(ctx, "echo", &input).await
    }
}

/// The echo tool for the API at `{origin}/api`, called under `policy`.
fn echo(origin: &str, policy: ToolPolicy) -> PolicyTool<Echo> {
    let api = HttpJson::new(&format!("{origin}/api")).unwrap();
    PolicyTool::new(Echo { api }, policy)
}

fn ask(text: &str) -> Ask {
    Ask { text: text.into() }
}

fn key(call: u32) -> IdempotencyKey {
    IdempotencyKey::new(
        &RunId::from("run-1"),
        "echo",
        flow_runtime::tool::Visit::FIRST,
        call,
    )
}

fn retrying(attempts: u32) -> ToolPolicy {
    ToolPolicy::builder().retry(quick_retry(attempts)).build()
}

/// The tool's own error inside a call error, whichever way the policy gave up.
fn tool_error(err: &CallError) -> &ToolError {
    match err {
        CallError::Rejected { source, .. } | CallError::GaveUp { source, .. } => source,
        other => panic!("expected the tool's error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// What a request carries.

#[tokio::test]
async fn every_attempt_carries_the_credential_the_same_idempotency_key_and_the_json_body() {
    let (server, origin) = Server::start(vec![reply(503, ""), reply(500, ""), ok("hi")]).await;
    let policy = ToolPolicy::builder()
        .auth(Auth::bearer(Credential::new("t0ken")))
        .retry(Retry::exponential(Duration::from_millis(1)).max_attempts(3))
        .build();
    let tool = echo(&origin, policy);

    let answer = tool.call(&key(7), ask("hi")).await.unwrap();

    assert_eq!(answer, Answer { echo: "hi".into() });
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, "/api/echo");
        assert_eq!(request.authorization.as_deref(), Some("Bearer t0ken"));
        assert_eq!(
            request.idempotency_key.as_deref(),
            Some(key(7).as_str()),
            "the key changed between attempts"
        );
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.accept.as_deref(), Some("application/json"));
        assert_eq!(request.body, r#"{"text":"hi"}"#);
    }
}

#[tokio::test]
async fn an_api_key_goes_in_its_own_header_and_never_into_errors() {
    const SECRET: &str = "k3y-must-not-leak";
    let (server, origin) = Server::start(vec![reply(401, "who are you?")]).await;
    let policy = ToolPolicy::builder()
        .auth(Auth::api_key("x-api-key", Credential::new(SECRET)))
        .build();
    let tool = echo(&origin, policy);

    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    assert_eq!(server.seen()[0].api_key.as_deref(), Some(SECRET));
    assert_eq!(server.seen()[0].authorization, None);
    assert_eq!(
        tool_error(&err).to_string(),
        "POST /api/echo answered 401 Unauthorized: who are you?"
    );
    let printed = format!("{} {:?}", error_chain(&err), tool.tool().api);
    assert!(!printed.contains(SECRET), "the key leaked into: {printed}");
}

#[derive(Serialize)]
struct Search<'a> {
    q: &'a str,
    limit: Option<u32>,
    page: Option<u32>,
    tag: Vec<&'a str>,
}

#[derive(Debug, Deserialize)]
struct Hits {
    total: u32,
}

#[tokio::test]
async fn get_sends_its_query_and_errors_leave_the_query_out() {
    let (server, origin) =
        Server::start(vec![reply(200, r#"{"total":3}"#), reply(400, "bad page")]).await;
    let api = HttpJson::new(&format!("{origin}/api/")).unwrap();
    let ctx = ToolCtx::new("search", key(0));
    let search = Search {
        q: "a b&c=d",
        limit: Some(10),
        page: None,
        tag: vec!["x", "y"],
    };

    let hits: Hits = api.get(&ctx, "/search", &search).await.unwrap();
    let err = api
        .get::<_, Hits>(&ctx, "search", &[("api_key", "secret-in-query")])
        .await
        .unwrap_err();

    assert_eq!(hits.total, 3);
    let seen = server.seen();
    assert_eq!(
        (&seen[0].method, seen[0].path.as_str()),
        (&Method::GET, "/api/search")
    );
    let mut pairs: Vec<(String, String)> = url_pairs(seen[0].query.as_deref().unwrap()).collect();
    pairs.sort();
    let expected = [
        ("limit", "10"),
        ("q", "a b&c=d"),
        ("tag", "x"),
        ("tag", "y"),
    ];
    assert_eq!(
        pairs,
        expected.map(|(k, v)| (k.to_owned(), v.to_owned())),
        "{:?}",
        seen[0].query
    );
    assert_eq!(seen[0].body, "");
    assert_eq!(seen[1].query.as_deref(), Some("api_key=secret-in-query"));
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "GET /api/search answered 400 Bad Request: bad page"
    );
}

fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').map(|pair| {
        let (k, v) = pair.split_once('=').unwrap();
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            let mut out = Vec::new();
            let mut bytes = s.bytes();
            while let Some(b) = bytes.next() {
                if b == b'%' {
                    let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                    out.push(u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap());
                } else {
                    out.push(b);
                }
            }
            String::from_utf8(out).unwrap()
        };
        (decode(k), decode(v))
    })
}

#[tokio::test]
async fn an_empty_answer_decodes_as_unit() {
    let (server, origin) = Server::start(vec![reply(204, "")]).await;
    let api = HttpJson::new(&origin).unwrap();
    let ctx = ToolCtx::new("forget", key(0));

    let (): () = api.delete(&ctx, "sessions/42", &()).await.unwrap();

    let seen = server.seen();
    assert_eq!(
        (&seen[0].method, seen[0].path.as_str()),
        (&Method::DELETE, "/sessions/42")
    );
    assert_eq!(seen[0].query, None);
}

// ---------------------------------------------------------------------------------------------
// How an answer is classified.

#[tokio::test]
async fn a_503_with_retry_after_is_retried_after_the_wait() {
    let busy = Reply {
        retry_after: Some("1"),
        ..reply(503, "busy")
    };
    let (server, origin) = Server::start(vec![busy, ok("hi")]).await;
    // The backoff alone would wait at most 1 ms: only Retry-After explains a 1 s gap.
    let tool = echo(&origin, retrying(3));

    let answer = tool.call(&key(0), ask("hi")).await.unwrap();

    assert_eq!(answer.echo, "hi");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
}

#[tokio::test]
async fn the_retry_after_wait_is_on_the_error() {
    let (_server, origin) = Server::start(vec![Reply {
        retry_after: Some(" 120 "),
        ..reply(429, "slow down")
    }])
    .await;
    let api = HttpJson::new(&origin).unwrap();

    let err = api
        .post::<_, Answer>(&ToolCtx::new("echo", key(0)), "echo", &ask("hi"))
        .await
        .unwrap_err();

    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        err.to_string(),
        "POST /echo answered 429 Too Many Requests: slow down"
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_its_message_has_the_status_and_the_body() {
    let (server, origin) =
        Server::start(vec![reply(400, "{\n  \"error\": \"text is empty\"\n}\n")]).await;
    let tool = echo(&origin, retrying(5));

    let err = tool.call(&key(0), ask("")).await.unwrap_err();

    assert!(
        matches!(
            err,
            CallError::Rejected {
                tool: "echo",
                attempt: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        tool_error(&err).to_string(),
        r#"POST /api/echo answered 400 Bad Request: { "error": "text is empty" }"#
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn a_long_error_body_is_cut_to_200_characters() {
    let body = "é".repeat(5_000);
    let (_server, origin) = Server::start(vec![reply(422, &body)]).await;
    let api = HttpJson::new(&origin).unwrap();

    let err = api
        .post::<_, Answer>(&ToolCtx::new("echo", key(0)), "echo", &ask("hi"))
        .await
        .unwrap_err();

    let message = err.to_string();
    let snippet = message
        .strip_prefix("POST /echo answered 422 Unprocessable Entity: ")
        .unwrap();
    assert_eq!(snippet, format!("{}…", "é".repeat(200)));
}

#[tokio::test]
async fn statuses_are_classified_as_transient_or_permanent() {
    let transient = [408, 425, 429, 500, 502, 503, 504];
    let permanent = [301, 400, 401, 403, 404, 405, 409, 410, 413, 422];
    for (status, expected) in transient
        .iter()
        .map(|s| (*s, true))
        .chain(permanent.iter().map(|s| (*s, false)))
    {
        let (_server, origin) = Server::start(vec![reply(status, "")]).await;
        let api = HttpJson::new(&origin).unwrap();

        let err = api
            .get::<_, Answer>(&ToolCtx::new("probe", key(0)), "probe", &())
            .await
            .unwrap_err();

        assert_eq!(err.is_transient(), expected, "{status}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("GET /probe answered {status} ")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_200_whose_body_does_not_decode_is_permanent_and_does_not_quote_the_body() {
    let cases = [
        // serde_json's own message would be `invalid type: string "s3cret-in-body", …`.
        (
            r#""s3cret-in-body""#,
            "it does not match `tools::tool_http::Answer` at line 1 column 16",
        ),
        (
            r#"{"echo": 42, "token": "s3cret-in-body"}"#,
            "it does not match `tools::tool_http::Answer` at line 1 column 11",
        ),
        (
            r#"{"token": "s3cret-in-body"}"#,
            "missing field `echo` at line 1 column 27",
        ),
        (
            "<html>s3cret-in-body</html>",
            "it is not valid JSON at line 1 column 1",
        ),
        (
            r#"{"echo": "s3cret-in-bo"#,
            "it ends early at line 1 column 22",
        ),
    ];
    for (body, why) in cases {
        let (server, origin) = Server::start(vec![reply(200, body)]).await;
        let tool = echo(&origin, retrying(3));

        let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

        assert!(
            matches!(err, CallError::Rejected { attempt: 1, .. }),
            "{err:?}"
        );
        assert_eq!(
            tool_error(&err).to_string(),
            format!(
                "POST /api/echo answered 200 OK, but its body is not the expected JSON \
                 (`tools::tool_http::Answer`): {why}"
            )
        );
        let printed = error_chain(&err);
        assert!(
            !printed.contains("s3cret"),
            "the body leaked into: {printed}"
        );
        assert_eq!(server.seen().len(), 1);
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_retried() {
    // A port that was just free: nothing listens on it any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let tool = echo(&origin, retrying(2));

    let err = tool.call(&key(0), ask("hi")).await.unwrap_err();

    assert!(
        matches!(
            err,
            CallError::GaveUp {
                tool: "echo",
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    let source = tool_error(&err);
    assert!(source.is_transient());
    assert_eq!(source.to_string(), "POST /api/echo: could not connect");
    // reqwest's own message would name the URL; it was removed.
    assert!(
        !error_chain(&err).contains(&origin),
        "{}",
        error_chain(&err)
    );
}

// ---------------------------------------------------------------------------------------------
// Where a request may go.

#[tokio::test]
async fn a_path_that_leads_outside_the_base_url_is_refused_before_sending() {
    let (server, origin) = Server::start(vec![ok("hi")]).await;
    let api = HttpJson::new(&format!("{origin}/api/v1")).unwrap();
    let ctx = ToolCtx::new("echo", key(0));

    for path in ["../admin", "http://example.com/", "/v1/../../admin"] {
        let err = api
            .post::<_, Answer>(&ctx, path, &ask("hi"))
            .await
            .unwrap_err();
        assert!(!err.is_transient(), "{path}: {err}");
        assert!(
            err.to_string()
                .contains("leads outside the base URL's path `/api/v1/`"),
            "{path}: {err}"
        );
    }
    // A scheme-relative path is only a path: it stays under the base.
    let _: Answer = api.post(&ctx, "//echo", &ask("hi")).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/api/v1/echo");
}

#[tokio::test]
async fn redirects_are_followed_within_the_origin_only() {
    let (elsewhere, other_origin) = Server::start(vec![ok("elsewhere")]).await;
    let (server, origin) = Server::start(vec![
        Reply {
            location: Some("/api/moved".to_owned()),
            ..reply(307, "")
        },
        ok("moved"),
        Reply {
            location: Some(format!("{other_origin}/steal")),
            ..reply(307, "")
        },
    ])
    .await;
    let policy = ToolPolicy::builder()
        .auth(Auth::api_key("x-api-key", Credential::new("k3y")))
        .build();
    let tool = echo(&origin, policy);

    let moved = tool.call(&key(0), ask("hi")).await.unwrap();
    let err = tool.call(&key(1), ask("hi")).await.unwrap_err();

    assert_eq!(moved.echo, "moved");
    let paths: Vec<_> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/api/echo", "/api/moved", "/api/echo"]);
    assert!(matches!(err, CallError::Rejected { .. }), "{err:?}");
    assert_eq!(
        tool_error(&err).to_string(),
        "POST /api/echo answered 307 Temporary Redirect"
    );
    assert!(elsewhere.seen().is_empty(), "the key went to another host");
}

/// A POST answered with a 301, 302 or 303 within the origin. reqwest follows it with a GET
/// without the body (RFC 9110 lets a client), and the tool took that GET's answer for the
/// POST's: the call succeeded while the service never got the request. Such a redirect is now
/// the answer (permanent); a GET still follows it, since it is resent as it was.
#[tokio::test]
async fn a_redirect_that_would_turn_a_post_into_a_get_is_not_followed() {
    for status in [301, 302, 303] {
        let moved = || Reply {
            location: Some("/api/moved".to_owned()),
            ..reply(status, "")
        };
        let (server, origin) =
            Server::start(vec![moved(), ok("moved"), moved(), ok("moved")]).await;
        let tool = echo(&origin, ToolPolicy::default());

        let result = tool.call(&key(0), ask("hi")).await;

        let seen: Vec<_> = server
            .seen()
            .into_iter()
            .map(|s| (s.method, s.path))
            .collect();
        assert_eq!(
            seen,
            [(Method::POST, "/api/echo".to_owned())],
            "{status}: {result:?}"
        );
        let err = result.unwrap_err();
        assert!(matches!(err, CallError::Rejected { .. }), "{err:?}");
        assert!(
            tool_error(&err)
                .to_string()
                .starts_with(&format!("POST /api/echo answered {status}")),
            "{err}"
        );

        let ctx = ToolCtx::new("echo", key(1));
        let api = HttpJson::new(&format!("{origin}/api")).unwrap();
        let answer: Answer = api.get(&ctx, "echo", &()).await.unwrap();
        assert_eq!(answer.echo, "moved", "{status}");
    }
}

#[test]
#[cfg(feature = "rustls")]
fn https_is_accepted_with_tls() {
    let api = HttpJson::new("https://api.example.com/v1").unwrap();
    assert_eq!(api.base_url().as_str(), "https://api.example.com/v1/");
}

#[test]
#[cfg(not(feature = "rustls"))]
fn https_without_tls_is_refused_with_a_clear_error() {
    // README's test command builds flow-runtime without its `rustls` feature.
    let err = HttpJson::new("https://api.example.com/v1").unwrap_err();

    assert!(
        matches!(
            err,
            flow_runtime::tool::http::HttpJsonError::HttpsWithoutTls { .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "base URL `https://api.example.com/v1` is https, but flow-runtime was built without \
         TLS: enable its `rustls` feature, or pass a client that has TLS to \
         `HttpJson::with_client`"
    );
    // A client of your own is trusted to know.
    let api = HttpJson::with_client(reqwest::Client::new(), "https://api.example.com/v1").unwrap();
    assert_eq!(api.base_url().as_str(), "https://api.example.com/v1/");
}

#[test]
fn base_urls_that_cannot_work_are_refused() {
    let cases = [
        (
            "not a url",
            "invalid base URL `not a url`: relative URL without a base",
        ),
        (
            "file:///etc/passwd",
            "base URL scheme `file` is not supported; expected `http` or `https`",
        ),
        (
            "http://ada:s3cret@api.example.com/",
            "the base URL holds a username or password; declare the credential in the tool's \
             policy instead (`Auth::basic`)",
        ),
        (
            "http://api.example.com/?key=s3cret",
            "the base URL has a query string or a fragment; give query parameters to each \
             request (`HttpJson::get`), and credentials to the tool's policy (`Auth`)",
        ),
    ];
    for (url, message) in cases {
        let err = HttpJson::new(url).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}
