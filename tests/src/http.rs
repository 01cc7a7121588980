//! A real HTTP server on loopback, for tools and webhooks to call.

use axum::http::HeaderMap;

/// Serves `app` on an ephemeral port of 127.0.0.1 in a task of the current tokio runtime, and
/// returns its origin (`http://127.0.0.1:<port>`, no trailing slash). The server lives as long
/// as the runtime (each `#[tokio::test]` has its own).
///
/// # Panics
///
/// If no loopback port can be bound: the test cannot run.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port on 127.0.0.1");
    let origin = format!(
        "http://{}",
        listener
            .local_addr()
            .expect("a bound listener has an address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// The value of header `name` in `headers` as text, if the request had it.
///
/// # Panics
///
/// If the value is not visible ASCII: the clients under test send only that.
#[must_use]
pub fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| {
        v.to_str()
            .expect("a header value of visible ASCII")
            .to_owned()
    })
}
