//! The viewer's pages and JSON API over a real listener: the list and its filters, run
//! pages, 404s, actions refused without the token and done with it, no external URL in any
//! page, the token in no page.

use crate::fixture::Fixture;
use reqwest::StatusCode;
use serde_json::Value;

const TOKEN: &str = "t0ken-for-tests";

async fn get(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    response.json().await.unwrap()
}

fn ids(runs: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// A request addressed to another host (a DNS name an attacker points at 127.0.0.1) is
/// refused before it reads anything; the viewer's own addresses are answered.
#[tokio::test]
async fn requests_for_other_hosts_are_refused() {
    let fixture = Fixture::new().await;
    let server = fixture.serve(&[]).await;
    let port = server.url.rsplit(':').next().unwrap();
    let client = reqwest::Client::new();
    let with_host = |host: String| {
        client
            .get(format!("{}/api/runs", server.url))
            .header(reqwest::header::HOST, host)
            .send()
    };
    let refused = with_host(format!("evil.example:{port}")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(!refused.text().await.unwrap().contains("run_id"));
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let answered = with_host(host.clone()).await.unwrap();
        assert_eq!(answered.status(), StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn the_list_shows_every_run_and_filters() {
    let fixture = Fixture::new().await;
    let server = fixture.serve(&[]).await;
    assert!(server.banner.contains("read-only"), "{}", server.banner);

    let (status, page) = get(&format!("{}/", server.url)).await;
    assert_eq!(status, StatusCode::OK);
    for run in ["ord-done", "ord-wait", "pay-failed"] {
        assert!(page.contains(&format!("href=\"/runs/{run}\"")), "{page}");
    }
    assert!(page.contains("card declined for 40"), "{page}");

    let all = json(&format!("{}/api/runs", server.url)).await;
    assert_eq!(ids(&all), ["ord-done", "ord-wait", "pay-failed"]);
    let failed = json(&format!("{}/api/runs?status=failed", server.url)).await;
    assert_eq!(ids(&failed), ["pay-failed"]);
    let orders = json(&format!("{}/api/runs?workflow=order&status=", server.url)).await;
    assert_eq!(ids(&orders), ["ord-done", "ord-wait"]);
    let recent = json(&format!("{}/api/runs?since=1h", server.url)).await;
    assert_eq!(ids(&recent).len(), 3);
    let future = json(&format!(
        "{}/api/runs?since=2999-01-01T00:00:00Z",
        server.url
    ))
    .await;
    assert_eq!(ids(&future).len(), 0);
    let (status, page) = get(&format!("{}/?status=failed", server.url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("pay-failed") && !page.contains("ord-wait"),
        "{page}"
    );

    let (status, body) = get(&format!("{}/api/runs?status=lost", server.url)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("expected one of"), "{body}");
    let (status, body) = get(&format!("{}/api/runs?limit=abc", server.url)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(
        error["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{body}"
    );

    let workflows = json(&format!("{}/api/workflows", server.url)).await;
    let mut names: Vec<&str> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["order", "payment"]);
}

#[tokio::test]
async fn a_run_page_marks_the_graph_and_lists_steps_and_calls() {
    let fixture = Fixture::new().await;
    let server = fixture.serve(&["--price", "quoter-2=3/15"]).await;

    let (status, page) = get(&format!("{}/runs/pay-failed", server.url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="reason""#), "{page}");
    assert!(page.contains("card declined for 40"), "{page}");
    assert!(
        page.contains(r#"class="node done" data-step="check""#),
        "{page}"
    );
    assert!(
        page.contains(r#"class="node failed" data-step="charge""#),
        "{page}"
    );
    assert!(page.contains(r#"id="timeline""#), "{page}");

    let (status, page) = get(&format!("{}/runs/ord-wait", server.url)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"class="node done" data-step="quote""#),
        "{page}"
    );
    assert!(
        page.contains(r#"class="node waiting" data-step="approve""#),
        "{page}"
    );
    assert!(
        page.contains(r#"class="node todo" data-step="ship""#),
        "{page}"
    );
    assert!(page.contains("12 in, 5 out"), "tokens: {page}");
    assert!(
        page.contains(r#"<dd id="cost">0.0001</dd>"#),
        "cost: {page}"
    );
    assert!(
        page.contains("<strong>price</strong>"),
        "the price call: {page}"
    );
    assert!(page.contains("<details"), "collapsible JSON: {page}");
    assert!(page.contains("Read-only"), "{page}");

    let run = json(&format!("{}/api/runs/ord-wait", server.url)).await;
    assert_eq!(run["state"], "waiting");
    assert_eq!(run["waiting_step"], "approve");
    assert_eq!(run["current_step"], "approve");
    assert_eq!(run["current_steps"], serde_json::json!(["approve"]));
    assert_eq!(run["tokens"]["input"], 12);
    assert_eq!(run["calls"][0]["model"], "quoter-2-20261101");
    assert!(run["cost"]["total"].as_f64().unwrap() > 0.0, "{run}");
    let marks: Vec<(&str, &str)> = run["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["mark"].as_str().unwrap()))
        .collect();
    assert_eq!(
        marks,
        [("quote", "done"), ("approve", "waiting"), ("ship", "none")]
    );
    let price = run["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["tool"] == "price")
        .unwrap();
    assert_eq!(price["output"], 21);
    assert_eq!(run["actions"], serde_json::json!(["cancel", "pause"]));

    let done = json(&format!("{}/api/runs/ord-done", server.url)).await;
    assert_eq!(done["state"], "finished");
    assert!(done["current_step"].is_null());
    assert!(
        done["graph"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["mark"] == "done"),
        "{done}"
    );
}

#[tokio::test]
async fn an_unknown_run_is_404() {
    let fixture = Fixture::new().await;
    let server = fixture.serve(&["--token", TOKEN]).await;
    let (status, page) = get(&format!("{}/runs/nope", server.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("run `nope` is not in the store"), "{page}");
    let (status, body) = get(&format!("{}/api/runs/nope", server.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("not in the store"), "{body}");
    let (status, page) = get(&format!("{}/runs/%3Cscript%3Ex", server.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("run `&lt;script&gt;x`"), "escaped: {page}");
    let (status, _) = get(&format!("{}/no/such/page", server.url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = reqwest::Client::new()
        .post(format!("{}/api/runs/nope/cancel", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_are_refused_without_the_token_and_done_with_it() {
    let fixture = Fixture::new().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Read-only: refused even with a token.
    let read_only = fixture.serve(&[]).await;
    let response = http
        .post(format!("{}/api/runs/ord-wait/pause", read_only.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("read-only"));
    drop(read_only);

    let server = fixture.serve(&["--token", TOKEN]).await;
    let state =
        || async { json(&format!("{}/api/runs/ord-wait", server.url)).await["status"].clone() };
    for auth in [None, Some("wrong"), Some("")] {
        let mut request = http.post(format!("{}/api/runs/ord-wait/pause", server.url));
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{auth:?}");
    }
    let response = http
        .post(format!("{}/runs/ord-wait/pause", server.url))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(state().await, "running");

    // With the token: the API…
    let response = http
        .post(format!("{}/api/runs/ord-wait/pause", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["status"], "paused");
    assert_eq!(state().await, "paused");

    // …and the page's form, which goes back to the run page.
    let response = http
        .post(format!("{}/runs/ord-wait/resume", server.url))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/runs/ord-wait?done=resume");
    assert_eq!(state().await, "running");
    let (_, page) = get(&format!("{}/runs/ord-wait?done=resume", server.url)).await;
    assert!(page.contains(r#"id="flash""#), "{page}");
    assert!(page.contains(r#"id="do-pause""#), "the form: {page}");
    // A link cannot put its own text in the notice, beside the token field.
    let (_, page) = get(&format!(
        "{}/runs/ord-wait?done=paste%20your%20token%20at%20evil.example",
        server.url
    ))
    .await;
    assert!(
        !page.contains(r#"id="flash""#) && !page.contains("evil.example"),
        "{page}"
    );

    // What the run's status does not allow is a conflict.
    let response = http
        .post(format!("{}/api/runs/ord-done/cancel", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("finished"));
    let response = http
        .post(format!("{}/api/runs/ord-wait/explode", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn approvals_need_the_token_and_are_decided_once() {
    let fixture = Fixture::with_approvals().await;
    let a = fixture.pending_call("refund-a").await;
    let b = fixture.pending_call("refund-b").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let pending = || async {
        let store = fixture.store();
        let mut calls = Vec::new();
        for run in ["refund-a", "refund-b"] {
            let info = flow_runtime::store::Store::status(&store, &run.into())
                .await
                .unwrap()
                .unwrap();
            calls.push(info.approval.map(|a| a.call_id));
        }
        calls
    };

    // Read-only: the page shows the pending call, no form; the API and the form refuse.
    let read_only = fixture.serve(&[]).await;
    let (status, page) = get(&format!("{}/runs/refund-a", read_only.url)).await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        "Pending approval",
        a.as_str(),
        "refund",
        "499",
        "to approve or reject calls",
    ] {
        assert!(page.contains(part), "{part:?} not in the page");
    }
    assert!(
        !page.contains(r#"id="do-approve""#),
        "no form when read-only"
    );
    let run = json(&format!("{}/api/runs/refund-a", read_only.url)).await;
    assert_eq!(run["approval"]["call_id"], a.as_str());
    assert_eq!(run["waiting_step"], "pay");
    assert_eq!(run["current_step"], "pay");
    assert_eq!(run["approvals"].as_array().unwrap().len(), 1);
    let list = json(&format!("{}/api/runs", read_only.url)).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == "refund-a" && r["approval"]["call_id"] == a.as_str()),
        "{list}"
    );
    let response = http
        .post(format!(
            "{}/api/runs/refund-a/approvals/{a}/approve",
            read_only.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("read-only"));
    let response = http
        .post(format!(
            "{}/runs/refund-a/approvals/{a}/approve",
            read_only.url
        ))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    drop(read_only);

    // With a token: refused without it or with another.
    let server = fixture.serve(&["--token", TOKEN]).await;
    let (_, page) = get(&format!("{}/runs/refund-a", server.url)).await;
    assert!(page.contains(r#"id="do-approve""#), "the form: {page}");
    assert!(page.contains(r#"id="do-reject""#), "the form: {page}");
    for auth in [None, Some("wrong"), Some("")] {
        let mut request = http.post(format!(
            "{}/api/runs/refund-a/approvals/{a}/approve",
            server.url
        ));
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{auth:?}");
    }
    let response = http
        .post(format!(
            "{}/runs/refund-a/approvals/{a}/approve",
            server.url
        ))
        .form(&[("token", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(pending().await, [Some(a.clone()), Some(b.clone())]);

    // Another run's call, a run without an approval, an unknown decision.
    let post = |path: String| {
        http.post(format!("{}{path}", server.url))
            .bearer_auth(TOKEN)
            .send()
    };
    let response = post(format!("/api/runs/refund-a/approvals/{b}/approve"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("has no pending call")
    );
    let response = post(format!("/api/runs/ord-wait/approvals/{a}/approve"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("waits for no approval")
    );
    let response = post(format!("/api/runs/ghost/approvals/{a}/approve"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post(format!("/api/runs/refund-a/approvals/{a}/maybe"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = http
        .post(format!(
            "{}/api/runs/refund-a/approvals/{a}/reject",
            server.url
        ))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"reason\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&response.text().await.unwrap()).expect("a JSON error");
    assert!(error["error"].is_string(), "{error}");
    assert_eq!(pending().await, [Some(a.clone()), Some(b.clone())]);

    // Approved through the API, once.
    let response = post(format!("/api/runs/refund-a/approvals/{a}/approve"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let after: Value = response.json().await.unwrap();
    assert_eq!(after["run_id"], "refund-a");
    let response = post(format!("/api/runs/refund-a/approvals/{a}/reject"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("was approved already")
    );

    // Rejected through the page's form, with a reason.
    let response = http
        .post(format!("{}/runs/refund-b/approvals/{b}/reject", server.url))
        .form(&[("token", TOKEN), ("reason", "over budget")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/runs/refund-b?done=reject");
    let run = json(&format!("{}/api/runs/refund-b", server.url)).await;
    assert_eq!(run["approvals"][0]["decision"], "rejected");
    assert_eq!(run["approvals"][0]["reason"], "over budget");
    let run = json(&format!("{}/api/runs/refund-a", server.url)).await;
    assert_eq!(run["approvals"][0]["decision"], "approved");
}

#[tokio::test]
async fn a_written_token_file_allows_actions() {
    let fixture = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let server = fixture
        .serve(&["--write-token-file", file.to_str().unwrap()])
        .await;
    let token = std::fs::read_to_string(&file).unwrap();
    assert!(token.len() >= 32, "{token}");
    assert!(!server.banner.contains(&token), "{}", server.banner);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only its owner may read the token: {mode:o}"
        );
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/runs/ord-wait/cancel", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Every `href`, `src`, `action` and `formaction` of `page`.
fn links(page: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for attr in ["href=\"", "src=\"", "action=\""] {
        for (at, _) in page.match_indices(attr) {
            let rest = &page[at + attr.len()..];
            found.push(&rest[..rest.find('"').unwrap_or(rest.len())]);
        }
    }
    found
}

#[tokio::test]
async fn no_page_names_another_origin_or_shows_the_token() {
    let fixture = Fixture::new().await;
    let server = fixture.serve(&["--token", TOKEN]).await;
    assert!(!server.banner.contains(TOKEN), "{}", server.banner);
    let mut pages = vec![
        "/".to_owned(),
        "/?status=failed".to_owned(),
        "/runs/nope".to_owned(),
        "/missing".to_owned(),
        "/assets/style.css".to_owned(),
        "/assets/app.js".to_owned(),
    ];
    for run in ["ord-done", "ord-wait", "pay-failed"] {
        pages.push(format!("/runs/{run}"));
        pages.push(format!("/api/runs/{run}"));
    }
    for path in &pages {
        let response = reqwest::get(format!("{}{path}", server.url)).await.unwrap();
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("http://"), "{path} names an origin: {body}");
        assert!(!body.contains("https://"), "{path} names an origin: {body}");
        assert!(!body.contains(TOKEN), "{path} shows the token");
        for link in links(&body) {
            assert!(
                link.starts_with('/') && !link.starts_with("//") || link.starts_with('#'),
                "{path}: `{link}` leaves the viewer"
            );
        }
    }
}
