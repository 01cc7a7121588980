//! `flow serve`: a web run viewer over the store — a runs list, a page per run (its
//! workflow's graph with the completed steps, the current step and a pending wait marked; a
//! timeline of steps and calls with durations; the latest state, call outputs and errors as
//! collapsible JSON; token totals; the pending approval) and, behind a token, cancel, pause,
//! resume, and approve or reject the tool call a run waits for.
//!
//! Everything the pages need is in the binary: server-rendered HTML (maud), one stylesheet
//! and one small script, and the graph drawn here as SVG from the steps and edges the store
//! recorded for the workflow. No page loads anything from another origin (the
//! `Content-Security-Policy` header forbids it too), so the viewer works offline.
//!
//! # Steering
//!
//! Without a token (`--token` or `--write-token-file`) the viewer is read-only: every action
//! is refused with 403. With one, an action needs it, as `Authorization: Bearer <token>` (the
//! JSON API) or as the form field `token` (the run page's form). The token is never written
//! to a page, a log line or an error.
//!
//! # Hosts
//!
//! Reads need no token, so the viewer answers only requests addressed to it: on a loopback
//! address, a `Host` of `localhost`, `127.0.0.1` or `[::1]` with its port (or the address it
//! is bound to); anything else gets 421. That keeps a web page the operator visits from
//! reading runs through a DNS name it points at 127.0.0.1 (DNS rebinding). Bound to all
//! interfaces (`--addr 0.0.0.0:…`), the viewer answers any `Host`: every run is then readable
//! from the network.
//!
//! # Pages
//!
//! | Route | What |
//! |---|---|
//! | `GET /` | runs list; query `workflow`, `status`, `since` (`90s`, `2h`, `3days` ago or an RFC 3339 time), `limit`; refreshes itself from `/api/runs` |
//! | `GET /runs/{run}` | run page; refreshes itself when `/api/runs/{run}` changes |
//! | `POST /runs/{run}/{action}` | `action`: `cancel`, `pause`, `resume`; form field `token`; answers 303 to the run page, 403 without the token, 404, 409 when the run's status does not allow it |
//! | `POST /runs/{run}/approvals/{call}/{decision}` | `decision`: `approve`, `reject`; form fields `token`, `reason` (a rejection's); 303 to the run page, 403 without the token, 404 for an unknown run or call, 409 for a call decided already or past its deadline, or a run that waits for no approval |
//!
//! # JSON API
//!
//! Field names are the `flow … --json` ones (times RFC 3339 UTC with milliseconds, durations
//! in whole milliseconds, absent values `null`).
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /api/runs` | array of runs as `flow runs list --json` (same query as `/`); 400 (`{"error": "…"}`) for a parameter that does not parse |
//! | `GET /api/runs/{run}` | the run as `flow runs show --json`, plus `graph` (`nodes`: `id`, `label`, `kind`, `mark`; `edges`: `from`, `to`, `label`, `kind`), `current_step` (`current_steps` for a fan-out's pending branches), `waiting_step`, `checkpoint_state` (the latest checkpoint's state), `actions` (those the run's status allows), `bars` (each step on the run's time line, in thousandths) and `outputs` (each journaled call's output or error); 404 for an unknown run |
//! | `GET /api/workflows` | array of workflows as the store recorded them (`flow graph --json`) |
//! | `POST /api/runs/{run}/{action}` | `Authorization: Bearer <token>`; the run after the action, 403, 404 or 409 (`{"error": "…"}`) |
//! | `POST /api/runs/{run}/approvals/{call}/{decision}` | `decision`: `approve`, `reject`; `Authorization: Bearer <token>`; to reject, an optional body `{"reason": "…"}` (400 when it is not that JSON); the run after the decision, 403, 404 or 409 as the form's |
//! | `GET /health` | `ok` |

mod api;
mod graph;
mod pages;

use crate::error::CliError;
use crate::price::PriceArgs;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use flow_runtime::store::RunHistory;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `flow serve` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on; port 0 takes a free port (printed on start). Requests must be
    /// addressed to it (`Host`: localhost, 127.0.0.1 or [::1] with its port on loopback); bound
    /// to all interfaces (0.0.0.0), anyone on the network can read every run.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) addr: SocketAddr,
    /// Allow cancel, pause, resume, approve and reject to requests that carry this token.
    /// Without a token the viewer is read-only.
    #[arg(long, env = "FLOW_SERVE_TOKEN", hide_env_values = true, conflicts_with = "write_token_file", value_parser = parse_token)]
    pub(crate) token: Option<Token>,
    /// Make a random token, write it to this file (readable by its owner only) and allow
    /// actions to requests that carry it.
    #[arg(long, value_name = "FILE")]
    pub(crate) write_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) prices: PriceArgs,
}

/// The token that allows actions. `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// Whether `given` is the token, compared in constant time: their SHA-256 digests are, so
    /// that the time tells neither where they differ nor how long the token is (`ct_eq` of two
    /// byte strings returns at once when their lengths differ).
    fn matches(&self, given: &str) -> bool {
        use sha2::Digest as _;
        let (token, given) = (sha2::Sha256::digest(&self.0), sha2::Sha256::digest(given));
        subtle::ConstantTimeEq::ct_eq(token.as_slice(), given.as_slice()).into()
    }
}

fn parse_token(text: &str) -> Result<Token, String> {
    if text.trim().is_empty() {
        return Err("the token is empty: give a secret, or use --write-token-file".to_owned());
    }
    Ok(Token(text.to_owned()))
}

/// What every handler shares: the store and the token, if any.
struct AppState<S> {
    store: S,
    token: Option<Token>,
    /// Models' token prices, for runs' costs.
    prices: PriceArgs,
}

/// Handlers' state.
type Shared<S> = Arc<AppState<S>>;

/// The `Host` values the viewer answers (see the module's "Hosts").
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hosts {
    addr: SocketAddr,
}

impl Hosts {
    /// The hosts of a viewer listening on `addr`.
    pub(crate) fn of(addr: SocketAddr) -> Self {
        Self { addr }
    }

    /// Whether a request whose `Host` is `host` is addressed to this viewer.
    fn allow(self, host: &str) -> bool {
        if self.addr.ip().is_unspecified() {
            return true;
        }
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        // A `Host` without a port is port 80.
        if authority.port_u16().unwrap_or(80) != self.addr.port() {
            return false;
        }
        let name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                ip == self.addr.ip() || (ip.is_loopback() && self.addr.ip().is_loopback())
            })
    }
}

/// Refuses a request addressed to another host (421), before any handler reads the store.
async fn check_host(
    axum::extract::State(hosts): axum::extract::State<Hosts>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let allowed = match request.headers().get(header::HOST) {
        // HTTP/1.0 without `Host`: not a browser's request.
        None => true,
        Some(host) => host.to_str().is_ok_and(|host| hosts.allow(host)),
    };
    if allowed {
        next.run(request).await
    } else {
        axum::response::IntoResponse::into_response((
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "this viewer answers only requests addressed to its own address (see `flow serve --help`)",
        ))
    }
}

/// The viewer's routes over `store`; actions need `token`, and are refused without one;
/// requests addressed to other hosts than `hosts` are refused.
pub(crate) fn router<S: RunHistory>(
    store: S,
    token: Option<Token>,
    prices: PriceArgs,
    hosts: Hosts,
) -> Router {
    let state = Arc::new(AppState {
        store,
        token,
        prices,
    });
    Router::new()
        .route("/", get(pages::runs::<S>))
        .route("/runs/{run}", get(pages::run::<S>))
        .route("/runs/{run}/{action}", post(pages::act::<S>))
        .route(
            "/runs/{run}/approvals/{call}/{decision}",
            post(pages::decide::<S>),
        )
        .route("/api/runs", get(api::runs::<S>))
        .route("/api/runs/{run}", get(api::run::<S>))
        .route("/api/runs/{run}/{action}", post(api::act_json::<S>))
        .route(
            "/api/runs/{run}/approvals/{call}/{decision}",
            post(api::decide_json::<S>),
        )
        .route("/api/workflows", get(api::workflows::<S>))
        .route("/assets/style.css", get(pages::style))
        .route("/assets/app.js", get(pages::script))
        .route("/health", get(|| async { "ok" }))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(hosts, check_host))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(state)
}

/// Headers on every answer: nothing may be loaded from another origin, nothing framed, no
/// referrer sent.
async fn secure_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `flow serve`: listens on `args.addr` and serves the viewer over `store` until Ctrl-C.
///
/// # Errors
///
/// The token file cannot be written, the address cannot be bound, or serving fails.
pub(crate) async fn serve<S: RunHistory>(store: S, args: ServeArgs) -> Result<(), CliError> {
    let token = match (&args.token, &args.write_token_file) {
        (Some(token), _) => Some(token.clone()),
        (None, Some(path)) => Some(write_token(path)?),
        (None, None) => None,
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| {
            CliError::Unsupported(format!(
                "cannot listen on {}: {e}; pass another --addr (port 0 takes a free one)",
                args.addr
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Unsupported(format!("cannot read the bound address: {e}")))?;
    let mode = match (&token, &args.write_token_file) {
        (None, _) => "read-only: start with --token or --write-token-file to steer runs".to_owned(),
        (Some(_), Some(path)) => format!("actions need the token in {}", path.display()),
        (Some(_), None) => "actions need the token".to_owned(),
    };
    crate::output::line(&format!("flow serve: http://{addr}/ ({mode})"))?;
    axum::serve(listener, router(store, token, args.prices, Hosts::of(addr)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Unsupported(format!("the viewer stopped serving: {e}")))
}

/// Makes a random token and writes it to `path`, readable by its owner only.
///
/// Written to a new file beside `path`, made readable by its owner only, then renamed over
/// `path`: writing into an existing file would keep its mode (a `0644` file would let anyone
/// read the token), and changing that mode first would still leave the token to a reader that
/// opened the file before.
fn write_token(path: &Path) -> Result<Token, CliError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let cannot = |e: std::io::Error| {
        CliError::Unsupported(format!(
            "cannot write the token to `{}`: {e}; pass a path in a writable directory",
            path.display()
        ))
    };
    let name = path
        .file_name()
        .ok_or_else(|| cannot(std::io::Error::other("the path names no file")))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temporary = path.with_file_name(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temporary)
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, token.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(cannot(e));
    }
    Ok(Token(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token file that exists with mode 0644 ends with mode 0600 and the new token, and
    /// nothing else is left in its directory.
    #[cfg(unix)]
    #[test]
    fn the_token_file_is_readable_by_its_owner_only_even_when_it_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let Token(token) = write_token(&path).unwrap();

        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), token);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["token"]);
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let args = ServeArgs {
            addr: "127.0.0.1:0".parse().unwrap(),
            token: Some(Token("s3cret".to_owned())),
            write_token_file: None,
            prices: PriceArgs::default(),
        };
        assert!(!format!("{args:?}").contains("s3cret"));
    }

    #[test]
    fn only_requests_addressed_to_the_viewer_are_answered() {
        let local = Hosts::of("127.0.0.1:8080".parse().unwrap());
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(local.allow(host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1:9090",
            "localhost",
            "127.0.0.1.evil.example:8080",
            "10.0.0.5:8080",
            "",
        ] {
            assert!(!local.allow(host), "{host}");
        }
        let v6 = Hosts::of("[::1]:7000".parse().unwrap());
        assert!(v6.allow("[::1]:7000") && v6.allow("localhost:7000"));
        let lan = Hosts::of("192.168.1.9:80".parse().unwrap());
        assert!(lan.allow("192.168.1.9") && !lan.allow("evil.example"));
        assert!(Hosts::of("0.0.0.0:80".parse().unwrap()).allow("any.example"));
    }

    #[test]
    fn tokens_compare_whole() {
        let token = Token("abc".to_owned());
        assert!(token.matches("abc"));
        assert!(!token.matches("ab"));
        assert!(!token.matches("abcd"));
        assert!(!token.matches(""));
    }
}
