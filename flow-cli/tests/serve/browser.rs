//! The viewer in a real browser: Debian's `chromium`, headless, driven through
//! `chromedriver` by fantoccini. Opens the list, watches it refresh, opens the failed run
//! and reads its reason, resumes a paused run from its page and sees the state change, with
//! `FLOW_SCREENSHOT=1` saves the run page to `docs/run-page.png` (and a run awaiting an
//! approval to `docs/approval-page.png`), watches the run page
//! reload itself when the run is paused elsewhere, and approves a pending tool call from its
//! run's page and sees the run finish (an engine in the test process drives it).
//!
//! Needs `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`;
//! `.ci/run` installs them): without them the test fails saying so.

use crate::fixture::Fixture;
use fantoccini::{Client, ClientBuilder, Locator};
use flow_runtime::store::SqliteStore;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

const TOKEN: &str = "browser-t0ken";
const WAIT: Duration = Duration::from_secs(15);

/// The path of a program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    url: String,
    _child: Child,
}

impl Driver {
    async fn start() -> Self {
        let (Some(driver), Some(_)) = (which("chromedriver"), which("chromium")) else {
            panic!(
                "the browser test needs Debian's chromium and chromedriver: \
                 `apt-get update && apt-get install -y chromium chromium-driver` \
                 (`.ci/run` installs them)"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        // Ready when it answers its status.
        for _ in 0..200 {
            if let Ok(response) = reqwest::get(format!("{url}/status")).await
                && response.status().is_success()
            {
                return Self { url, _child: child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not answer on {url} within 10 s");
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": which("chromium").unwrap(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1500",
                         "--hide-scrollbars"]
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start chromium through chromedriver: {e}"))
    }
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits until the element `css` reads `want` (the page refreshes itself).
async fn until_text(browser: &Client, css: &str, want: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{css}` reads `{now}`, not `{want}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_in_a_real_browser() {
    let driver = Driver::start().await;
    let fixture = Fixture::with_approvals().await;
    let server = fixture.serve(&["--token", TOKEN]).await;
    let store = Arc::new(fixture.store());
    let browser = driver.browser().await;
    // Driven in a task so that the browser is closed even when a check fails (killing
    // chromedriver alone would leave chromium running).
    let result = tokio::spawn({
        let browser = browser.clone();
        async move { drive(&browser, &server.url, store).await }
    })
    .await;
    browser.close().await.unwrap();
    match result {
        Ok(done) => done.unwrap(),
        Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
    }
}

async fn drive(
    browser: &Client,
    url: &str,
    store: Arc<SqliteStore>,
) -> Result<(), fantoccini::error::CmdError> {
    // The list, with all three runs.
    browser.goto(&format!("{url}/")).await?;
    assert_eq!(
        text(browser, "tr[data-run='ord-wait'] .state").await,
        "waiting"
    );
    assert_eq!(
        browser
            .find_all(Locator::Css("#runs tbody tr"))
            .await?
            .len(),
        5
    );

    // It refreshes itself: a run paused elsewhere shows as paused without a reload.
    let paused = reqwest::Client::new()
        .post(format!("{url}/api/runs/ord-wait/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(paused.status().is_success());
    until_text(browser, "tr[data-run='ord-wait'] .state", "paused").await;

    // The failed run: its reason, its graph, its timeline.
    browser
        .find(Locator::LinkText("pay-failed"))
        .await?
        .click()
        .await?;
    let reason = text(browser, "#reason").await;
    assert!(reason.contains("card declined for 40"), "{reason}");
    assert!(reason.contains("charge"), "{reason}");
    browser
        .find(Locator::Css("#graph g.node.failed[data-step='charge']"))
        .await?;
    browser
        .find(Locator::Css("#graph g.node.done[data-step='check']"))
        .await?;
    assert!(
        !browser
            .find_all(Locator::Css("#timeline tr.step"))
            .await?
            .is_empty()
    );

    // The paused run: resume it from its page, with the token.
    browser.goto(&format!("{url}/runs/ord-wait")).await?;
    assert_eq!(text(browser, "#state").await, "paused");
    browser
        .find(Locator::Id("token"))
        .await?
        .send_keys(TOKEN)
        .await?;
    browser
        .find(Locator::Id("do-resume"))
        .await?
        .click()
        .await?;
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("flash"))
        .await?;
    assert_eq!(text(browser, "#state").await, "waiting");
    browser
        .find(Locator::Css("#graph g.node.waiting[data-step='approve']"))
        .await?;
    let calls = browser.find_all(Locator::Css("#timeline tr.call")).await?;
    assert_eq!(calls.len(), 2, "the model call and the price call");
    assert!(text(browser, "#tokens").await.contains("12 in"));

    screenshot(browser, "run-page.png").await?;

    // The run page reloads itself when the run changes elsewhere.
    let paused = reqwest::Client::new()
        .post(format!("{url}/api/runs/ord-wait/pause"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(paused.status().is_success());
    until_text(browser, "#state", "paused").await;

    approve_and_finish(browser, url, store).await
}

/// With `FLOW_SCREENSHOT=1`, saves the page as `docs/<name>`.
async fn screenshot(browser: &Client, name: &str) -> Result<(), fantoccini::error::CmdError> {
    if std::env::var_os("FLOW_SCREENSHOT").is_some_and(|v| v == "1") {
        let png = browser.screenshot().await?;
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, png).unwrap();
    }
    Ok(())
}

/// Approves `refund-a`'s pending call from its page; an engine in this process takes the
/// decision, makes the call and finishes the run, and the page shows it.
async fn approve_and_finish(
    browser: &Client,
    url: &str,
    store: Arc<SqliteStore>,
) -> Result<(), fantoccini::error::CmdError> {
    browser.goto(&format!("{url}/runs/refund-a")).await?;
    assert_eq!(text(browser, "#state").await, "awaiting_approval");
    assert_eq!(text(browser, "#approval-tool").await, "refund");
    assert_eq!(text(browser, "#approval-arguments").await, "499");
    browser
        .find(Locator::Css("#graph g.node.waiting[data-step='pay']"))
        .await?;
    screenshot(browser, "approval-page.png").await?;

    let engine = crate::fixture::engine(&store, true);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        engine
            .run_until(async {
                let _ = stopped.await;
            })
            .await
    });

    browser
        .find(Locator::Id("approval-token"))
        .await?
        .send_keys(TOKEN)
        .await?;
    browser
        .find(Locator::Id("do-approve"))
        .await?
        .click()
        .await?;
    let flash = text(browser, "#flash").await;
    assert!(flash.starts_with("Done: approve"), "{flash}");
    // The page reloads itself when the engine has finished the run.
    until_text(browser, "#state", "finished").await;
    assert!(
        browser.find(Locator::Id("approval")).await.is_err(),
        "no pending approval left"
    );
    browser
        .find(Locator::Css("#graph g.node.done[data-step='pay']"))
        .await?;
    let calls = browser.find_all(Locator::Css("#timeline tr.call")).await?;
    assert_eq!(calls.len(), 1, "the refund call");
    assert!(calls[0].text().await?.contains("refund"));

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    Ok(())
}
