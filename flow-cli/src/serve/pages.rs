//! The HTML pages (maud, escaped by construction) and the embedded stylesheet and script.

use super::Shared;
use super::api::{self, ApiError, ListQuery, RunPage};
use crate::view::{CallView, RunView};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use flow_runtime::state::RunId;
use flow_runtime::store::RunHistory;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

const STATUSES: [&str; 7] = [
    "running",
    "paused",
    "cancelled",
    "finished",
    "incompatible",
    "failed",
    "corrupt",
];

/// `GET /assets/style.css`
pub(super) async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
}

/// `GET /assets/app.js`
pub(super) async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        SCRIPT,
    )
}

/// A whole page around `body`. The script polls `api`; on a run page, it reloads the page
/// when the run's `watch` (updated time, state) changes.
fn page(title: &str, page: &str, api: &str, watch: Option<(&str, &str)>, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · flow" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body data-page=(page) data-api=(api) data-updated=[watch.map(|w| w.0)] data-state=[watch.map(|w| w.1)] {
                header class="top" {
                    a href="/" class="brand" { "flow" }
                    span class="muted" { " run viewer" }
                    span id="live" class="muted live" {}
                }
                main { (body) }
            }
        }
    }
}

/// An error as a page, with its status.
fn error_page(error: &ApiError) -> Response {
    let body = html! {
        h1 { "Error " (error.status().as_u16()) }
        p id="error" class="failure" { (error.to_string()) }
        p { a href="/" { "All runs" } }
    };
    (
        error.status(),
        Html(page("Error", "error", "", None, &body).into_string()),
    )
        .into_response()
}

/// Unknown routes.
pub(super) async fn not_found() -> Response {
    let body = html! {
        h1 { "Not found" }
        p { "No page here. " a href="/" { "All runs" } }
    };
    (
        StatusCode::NOT_FOUND,
        Html(page("Not found", "error", "", None, &body).into_string()),
    )
        .into_response()
}

/// A state's badge.
fn badge(state: &str) -> Markup {
    html! { span class={ "state " (state) } { (state) } }
}

/// What a run's state says beyond its name.
fn detail(run: &RunView) -> String {
    if let Some(failure) = &run.failure {
        return failure.reason.clone();
    }
    if let Some(approval) = &run.approval {
        return format!(
            "waits for the approval of `{}` call `{}` until {}",
            approval.tool, approval.call_id, approval.until
        );
    }
    if let Some(wait) = &run.wait {
        return format!("waits for `{}` until {}", wait.event, wait.until);
    }
    if let Some(wake) = &run.wake_at {
        return format!("wakes at {wake}");
    }
    run.corrupt.clone().unwrap_or_default()
}

/// `GET /`: the runs list.
pub(super) async fn runs<S: RunHistory>(
    State(state): State<Shared<S>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let runs = match api::list(&state.store, &query).await {
        Ok(runs) => runs,
        Err(e) => return error_page(&e),
    };
    let mut workflows: Vec<String> = match state.store.workflows().await {
        Ok(list) => list.into_iter().map(|w| w.name).collect(),
        Err(e) => return error_page(&ApiError::Store(e)),
    };
    workflows.extend(runs.iter().map(|r| r.workflow.clone()));
    workflows.sort();
    workflows.dedup();
    let api = format!(
        "/api/runs?{}",
        serde_urlencoded::to_string(&query).unwrap_or_default()
    );
    let views: Vec<RunView> = runs.iter().map(RunView::of).collect();
    let body = html! {
        h1 { "Runs" }
        form id="filters" class="filters" method="get" action="/" {
            label { "Workflow "
                select name="workflow" {
                    option value="" { "all" }
                    @for name in &workflows {
                        option value=(name) selected[query.workflow() == Some(name.as_str())] { (name) }
                    }
                }
            }
            label { "Status "
                select name="status" {
                    option value="" { "all" }
                    @for status in STATUSES {
                        option value=(status) selected[query.status() == Some(status)] { (status) }
                    }
                }
            }
            label { "Updated since "
                input type="text" name="since" placeholder="2h, 3days, 2026-01-31T12:00:00Z"
                    value=[query.since()];
            }
            button type="submit" { "Filter" }
        }
        table id="runs" class="runs" {
            thead { tr { th { "Run" } th { "Workflow" } th { "State" } th { "Step" } th { "Checkpoints" } th { "Updated" } th { "Detail" } } }
            tbody {
                @for run in &views {
                    tr data-run=(run.run_id) {
                        td { a href={ "/runs/" (percent(&run.run_id)) } { (run.run_id) } }
                        td { (run.workflow) }
                        td { (badge(run.state)) }
                        td { (run.step) }
                        td class="num" { (run.checkpoints) }
                        td { time { (run.updated_at) } }
                        td class="detail" { (detail(run)) }
                    }
                }
            }
        }
        @if views.is_empty() { p id="empty" class="muted" { "No runs match." } }
    };
    Html(page("Runs", "runs", &api, None, &body).into_string()).into_response()
}

/// What [`percent`] keeps: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` percent-encoded for a path segment or a query value.
fn percent(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// JSON, pretty, for a `<pre>`.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A duration as `flow runs show` prints it (`24ms`, `1.2s`); `–` when not known.
fn duration(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "–".to_owned(),
        |ms| crate::output::short(std::time::Duration::from_millis(ms)),
    )
}

/// A call's row, and its output or error folded under it.
fn call_row(call: &CallView, page: &RunPage) -> Markup {
    let output = page.outputs.iter().find(|o| o.is_of(call));
    html! {
        tr class={ "call " (call.outcome) } {
            td {}
            td class="call-name" {
                "↳ " (call.kind) " " strong { (call.name) }
                @if !call.visit.is_empty() { " (" (call.visit) ")" }
            }
            td class="num" { (call.attempts) }
            td {}
            td class="num" { @if call.checkpointed { (duration(call.duration_ms)) } @else { "not checkpointed" } }
            td {}
            td {
                @if let Some(error) = &call.error {
                    details class="error" open { summary { "failed" } pre { (error) } }
                } @else if let Some(value) = output.and_then(|o| o.output.as_ref()) {
                    details { summary { "output" } pre { (pretty(value)) } }
                } @else { (call.outcome) }
                @if let Some(tokens) = call.tokens {
                    span class="tokens" { (tokens.input) " in / " (tokens.output) " out tokens" }
                }
            }
        }
    }
}

/// `GET /runs/{run}`: a run's page.
pub(super) async fn run<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path(run): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let data = match api::load(&state.store, &RunId::from(run.as_str()), &state.prices).await {
        Ok(data) => data,
        Err(e) => return error_page(&e),
    };
    let d = &data.detail;
    let r = &d.run;
    // The calls of each checkpoint, in order; then those of steps not checkpointed.
    let mut calls = d.calls.iter().filter(|c| c.checkpointed);
    let pending: Vec<&CallView> = d.calls.iter().filter(|c| !c.checkpointed).collect();
    let body = html! {
        h1 { "Run " code { (r.run_id) } " " (badge(r.state)) }
        // Only an action's own name: a link could carry any text to show beside the token field.
        @if let Some(done) = flash.done.as_deref().filter(|d| ["cancel", "pause", "resume", "approve", "reject"].contains(d)) {
            p id="flash" class="flash" { "Done: " (done) " → the run is now " strong { (r.state) } "." }
        }
        @if let Some(failure) = &r.failure {
            div id="reason" class="failure" {
                strong { "Failed" @if let Some(step) = &failure.step { " in " code { (step) } } ": " }
                (failure.reason)
            }
        }
        dl class="summary" {
            dt { "Workflow" } dd { (r.workflow) " " span class="muted" { "(fingerprint " (r.fingerprint) ")" } }
            dt { "State" } dd id="state" { (r.state) }
            dt { "Latest step" } dd { @if r.step.is_empty() { "(start)" } @else { (r.step) } " · " (r.checkpoints) " checkpoints" }
            @if !data.current_steps.is_empty() {
                dt { @if data.current_steps.len() == 1 { "Current step" } @else { "Current steps" } }
                dd id="current" { (data.current_steps.join(", ")) }
            }
            @if let Some(approval) = &r.approval {
                dt { "Waits for" } dd id="wait" { "the approval of a " code { (approval.tool) } " call until " time { (approval.until) } }
            } @else if let Some(wait) = &r.wait {
                dt { "Waits for" } dd id="wait" { "event " code { (wait.event) } " until " time { (wait.until) } }
            }
            @if let Some(wake) = &r.wake_at { dt { "Wakes" } dd { time { (wake) } } }
            dt { "Created" } dd { time { (r.created_at) } }
            dt { "Updated" } dd { time id="updated" { (r.updated_at) } }
            dt { "Tokens" } dd id="tokens" {
                @if let Some(tokens) = d.tokens { (tokens.input) " in, " (tokens.output) " out" } @else { "none reported" }
            }
            @if let Some(cost) = d.cost { dt { "Cost" } dd id="cost" { (cost.text()) } }
            @if let Some(corrupt) = &r.corrupt { dt { "Unreadable" } dd class="failure" { (corrupt) } }
        }
        @if let Some(approval) = &r.approval {
            section id="approval" data-call=(approval.call_id) {
                h2 { "Pending approval" }
                dl class="summary" {
                    dt { "Call" } dd id="approval-call" { code { (approval.call_id) } }
                    dt { "Tool" } dd id="approval-tool" { code { (approval.tool) } }
                    dt { "Step" } dd { (approval.step) @if !approval.visit.is_empty() { " (" (approval.visit) ")" } }
                    dt { "Arguments" } dd { pre id="approval-arguments" { (pretty(&approval.arguments)) } }
                    dt { "Deadline" } dd { time { (approval.until) } }
                }
                @if state.token.is_none() {
                    p class="muted" { "Read-only: start " code { "flow serve" } " with " code { "--token" } " or " code { "--write-token-file" } " to approve or reject calls." }
                } @else {
                    @let base = format!("/runs/{}/approvals/{}", percent(&r.run_id), percent(&approval.call_id));
                    form method="post" class="actions" action={ (base) "/approve" } {
                        label { "Token " input type="password" name="token" id="approval-token" autocomplete="off" required; }
                        label { "Reason (to reject) " input type="text" name="reason" id="approval-reason" autocomplete="off"; }
                        button type="submit" id="do-approve" formaction={ (base) "/approve" } { "approve" }
                        button type="submit" id="do-reject" formaction={ (base) "/reject" } { "reject" }
                    }
                }
            }
        }
        section id="actions" {
            h2 { "Actions" }
            @if state.token.is_none() {
                p class="muted" { "Read-only: start " code { "flow serve" } " with " code { "--token" } " or " code { "--write-token-file" } " to cancel, pause or resume runs." }
            } @else if data.actions.is_empty() {
                p class="muted" { "None: the run is " (r.status) "." }
            } @else {
                form method="post" class="actions" action={ "/runs/" (percent(&r.run_id)) "/" (data.actions[0]) } {
                    label { "Token " input type="password" name="token" id="token" autocomplete="off" required; }
                    @for action in &data.actions {
                        button type="submit" id={ "do-" (action) } formaction={ "/runs/" (percent(&r.run_id)) "/" (action) } { (action) }
                    }
                }
            }
        }
        section {
            h2 { "Graph" }
            @if let Some(graph) = &data.graph {
                div class="graph-box" { (graph.svg()) }
                p class="legend" {
                    span class="key done" { "done" } span class="key current" { "current" }
                    span class="key waiting" { "waiting" } span class="key failed" { "failed" } span class="key todo" { "not reached" }
                }
            } @else {
                p class="muted" { "The store has no record of workflow " code { (r.workflow) } "'s graph (it records it when an engine registers the workflow)." }
            }
        }
        section {
            h2 { "Timeline" }
            table id="timeline" class="timeline" {
                thead { tr { th { "#" } th { "Step / call" } th { "Attempt" } th { "Started" } th { "Duration" } th { "" } th { "Outcome" } } }
                tbody {
                    @for (step, bar) in d.steps.iter().zip(&data.bars) {
                        tr class="step" data-step=(step.step) {
                            td class="num" { (step.seq) }
                            td { strong { @if step.step.is_empty() { "(start)" } @else { (step.step) } } }
                            td class="num" { @if step.attempt == 0 { "–" } @else { (step.attempt) } }
                            td { @if let Some(started) = &step.started_at { time { (started) } } }
                            td class="num" { (duration(step.duration_ms)) }
                            td class="bar" {
                                svg width="160" height="10" viewBox="0 0 1000 10" preserveAspectRatio="none" {
                                    rect class="track" x="0" y="0" width="1000" height="10" {}
                                    rect class="span" x=(bar.start) y="0" width=(bar.width) height="10" {}
                                }
                            }
                            td {
                                @if let Some(failure) = &step.failure {
                                    details class="error" open { summary { "then failed" } pre { (failure.reason) } }
                                } @else if step.finished { "finished" } @else { "checkpoint at " time { (step.at) } }
                            }
                        }
                        @for call in calls.by_ref().take(step.calls) { (call_row(call, &data)) }
                    }
                    @for step in &data.current_steps {
                        tr class="step now" data-step=(step) {
                            td {} td { strong { (step) } } td {} td {} td {} td {}
                            td class="now" { (now_text(r)) }
                        }
                    }
                    @if !pending.is_empty() && !data.current_steps.contains(&pending[0].step) {
                        tr class="step pending" {
                            td {} td { strong { (pending[0].step) } " (no checkpoint yet)" } td {} td {} td {} td {} td {}
                        }
                    }
                    @for call in &pending { (call_row(call, &data)) }
                }
            }
        }
        section {
            h2 { "Data" }
            @if let Some(state) = &data.checkpoint_state {
                details id="state-json" { summary { "Latest checkpoint's state" } pre { (pretty(state)) } }
            }
            details { summary { "Run as JSON (" a href={ "/api/runs/" (percent(&r.run_id)) } { "API" } ")" } pre { (serde_json::to_string_pretty(&data).unwrap_or_default()) } }
        }
    };
    let api = format!("/api/runs/{}", percent(&r.run_id));
    let watch = Some((r.updated_at.as_str(), r.state));
    let html = page(&format!("Run {}", r.run_id), "run", &api, watch, &body).into_string();
    Html(html).into_response()
}

/// What the current step's row says: why it stands there.
fn now_text(run: &RunView) -> String {
    match (run.state, &run.wait, &run.failure) {
        (_, _, Some(failure)) => format!("failed: {}", failure.reason),
        ("awaiting_approval", ..) => "waiting for an approval".to_owned(),
        ("waiting", Some(wait), _) => format!("waiting for `{}` until {}", wait.event, wait.until),
        ("paused", ..) => "next, once resumed".to_owned(),
        ("sleeping", ..) => "next, after the sleep".to_owned(),
        _ => "running or next".to_owned(),
    }
}

/// `?done=<action>` after an action.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Flash {
    done: Option<String>,
}

/// The action forms' fields.
#[derive(Debug, Deserialize)]
pub(super) struct ActForm {
    token: Option<String>,
    /// A rejection's reason.
    reason: Option<String>,
}

/// `POST /runs/{run}/{action}` from the run page's form.
pub(super) async fn act<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path((run, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    let action = api::Action::of_run(&action);
    act_then_show(&state, &run, action, form.token.as_deref()).await
}

/// `POST /runs/{run}/approvals/{call}/{decision}` from the run page's approval form.
pub(super) async fn decide<S: RunHistory>(
    State(state): State<Shared<S>>,
    Path((run, call, decision)): Path<(String, String, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    let action = api::Action::of_call(call, &decision, form.reason.as_deref());
    act_then_show(&state, &run, action, form.token.as_deref()).await
}

/// Does `action` and redirects to the run page with a notice, or shows why not.
async fn act_then_show<S: RunHistory>(
    state: &Shared<S>,
    run: &str,
    action: Result<api::Action, ApiError>,
    token: Option<&str>,
) -> Response {
    let name = action.as_ref().map_or("", api::Action::name);
    match api::act(state, run, action, token).await {
        Ok(_) => Redirect::to(&format!("/runs/{}?done={name}", percent(run))).into_response(),
        Err(e) => error_page(&e),
    }
}
