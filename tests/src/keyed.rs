//! A loopback service that counts the requests it gets per `Idempotency-Key`, and [`Mix`], a
//! tool that calls it: for tests of what a step sends again after a crash or a failure.

use crate::http::{header_text, serve};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use flow_runtime::tool::http::HttpJson;
use flow_runtime::tool::{Tool, ToolCtx, ToolError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What [`Mix`] and the service compute from `n`: the test computes the same.
#[must_use]
pub fn mix(n: u64) -> u64 {
    n.wrapping_mul(31).wrapping_add(7)
}

/// The requests a [`KeyedService`] got, per idempotency key.
#[derive(Debug, Default)]
pub struct KeyedService {
    counts: Mutex<BTreeMap<String, u32>>,
}

impl KeyedService {
    /// Starts the service on an ephemeral loopback port of the current runtime; returns it and
    /// its origin. `POST /mix` with `{"n": n}` answers `{"value": mix(n)}`; a request without an
    /// `Idempotency-Key` header is refused with 400.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> (Arc<Self>, String) {
        let service = Arc::new(Self::default());
        let app = axum::Router::new()
            .route("/mix", axum::routing::post(answer))
            .with_state(Arc::clone(&service));
        (service, serve(app).await)
    }

    /// How many requests came with each key.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<String, u32> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn answer(
    State(service): State<Arc<KeyedService>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Result<axum::Json<serde_json::Value>, StatusCode> {
    let key = header_text(&headers, "idempotency-key").ok_or(StatusCode::BAD_REQUEST)?;
    let n = body["n"].as_u64().ok_or(StatusCode::BAD_REQUEST)?;
    *service
        .counts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key)
        .or_default() += 1;
    Ok(axum::Json(serde_json::json!({ "value": mix(n) })))
}

/// A tool that asks a [`KeyedService`] for `mix(n)`, sending the call's idempotency key.
#[derive(Debug)]
pub struct Mix {
    api: HttpJson,
}

impl Mix {
    /// The tool for the service at `origin`.
    ///
    /// # Errors
    ///
    /// `origin` is not a base URL.
    pub fn new(origin: &str) -> Result<Self, flow_runtime::tool::http::HttpJsonError> {
        Ok(Self {
            api: HttpJson::new(origin)?,
        })
    }
}

impl Tool for Mix {
    type Input = u64;
    type Output = u64;
    const NAME: &'static str = "mix";
    const DESCRIPTION: &'static str = "Mixes a number, at the keyed service.";

    async fn call(&self, ctx: &ToolCtx, n: u64) -> Result<u64, ToolError> {
        let body: serde_json::Value = self
            .api
            .post(ctx, "mix", &serde_json::json!({ "n": n }))
            .await?;
        body["value"]
            .as_u64()
            .ok_or_else(|| ToolError::permanent(format!("the service answered {body}")))
    }
}
