//! tower interop: any `tower::Service` as a tool ([`ServiceTool`]), and a tool with its policy
//! as a `tower::Service` ([`PolicyTool`]'s `Service` impl).

use crate::tool::{CallError, IdempotencyKey, PolicyTool, Tool, ToolCtx, ToolError};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use tower::{BoxError, Service, ServiceExt as _};

/// What a [`ServiceTool`] needs besides its service: the name, description, input and output
/// that make it a [`Tool`], and how to read the service's errors.
///
/// Implement it on a small marker type, one per tool:
///
/// ```
/// use flow_runtime::tool::ServiceToolInfo;
///
/// struct Weather;
///
/// impl ServiceToolInfo for Weather {
///     type Input = String;
///     type Output = f32;
///     const NAME: &'static str = "weather";
///     const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";
/// }
/// ```
pub trait ServiceToolInfo: Send + Sync + 'static {
    /// [`Tool::Input`]: what the service is called with (directly, or inside a
    /// [`ToolRequest`]).
    type Input: Serialize + DeserializeOwned + JsonSchema + Clone + Send + 'static;

    /// [`Tool::Output`]: the service's response.
    type Output: Serialize + DeserializeOwned + JsonSchema + Send + 'static;

    /// [`Tool::NAME`].
    const NAME: &'static str;

    /// [`Tool::DESCRIPTION`].
    const DESCRIPTION: &'static str;

    /// Classifies an error of the service (or of its middleware) as transient or permanent.
    ///
    /// The default is [`classify_service_error`]: a [`ToolError`] the service returned is kept
    /// as it is, even when middleware boxed it; anything else (a timeout, an overloaded
    /// service, a closed buffer) is transient. Override it to classify errors of your own
    /// types, falling back on [`classify_service_error`]:
    ///
    /// ```
    /// use flow_runtime::tool::{ServiceToolInfo, ToolError, classify_service_error};
    /// use tower::BoxError;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// enum LedgerError {
    ///     #[error("account {0} does not exist")]
    ///     NoSuchAccount(u64),
    ///     #[error("the ledger is being compacted")]
    ///     Compacting,
    /// }
    ///
    /// struct Balance;
    ///
    /// impl ServiceToolInfo for Balance {
    ///     type Input = u64;
    ///     type Output = i64;
    ///     const NAME: &'static str = "balance";
    ///     const DESCRIPTION: &'static str = "An account's balance, in cents.";
    ///
    ///     fn classify(error: BoxError) -> ToolError {
    ///         match error.downcast::<LedgerError>() {
    ///             Ok(e) if matches!(*e, LedgerError::Compacting) => {
    ///                 ToolError::transient("ledger busy").with_source(e)
    ///             }
    ///             Ok(e) => ToolError::permanent("no such account").with_source(e),
    ///             Err(other) => classify_service_error(other),
    ///         }
    ///     }
    /// }
    ///
    /// assert!(!Balance::classify(LedgerError::NoSuchAccount(7).into()).is_transient());
    /// assert!(Balance::classify(LedgerError::Compacting.into()).is_transient());
    /// assert!(Balance::classify("connection reset".into()).is_transient());
    /// ```
    #[must_use]
    fn classify(error: BoxError) -> ToolError {
        classify_service_error(error)
    }
}

/// What a [`ServiceTool`] whose service needs the call's context is called with: the
/// [`ToolCtx`] (idempotency key, attempt, credential) and the input.
///
/// A service over plain [`ServiceToolInfo::Input`] gets the input alone; a service over
/// `ToolRequest<Input>` gets both. See [`ServiceTool`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ToolRequest<I> {
    /// The attempt's context.
    pub ctx: ToolCtx,
    /// The tool's input.
    pub input: I,
}

impl<I> ToolRequest<I> {
    /// A request, as a [`ServiceTool`] makes one for each attempt (to call the service
    /// directly, in its own tests).
    pub fn new(ctx: ToolCtx, input: I) -> Self {
        Self { ctx, input }
    }
}

/// The requests a [`ServiceTool`] can call its service with, made from an attempt's context
/// and input: the input `I` itself, or a [`ToolRequest<I>`]. Sealed.
pub trait FromToolCall<I>: Sized + sealed::Sealed<I> {
    #[doc(hidden)]
    fn from_tool_call(ctx: &ToolCtx, input: I) -> Self;
}

impl<I> FromToolCall<I> for I {
    fn from_tool_call(_ctx: &ToolCtx, input: I) -> Self {
        input
    }
}

impl<I> FromToolCall<I> for ToolRequest<I> {
    fn from_tool_call(ctx: &ToolCtx, input: I) -> Self {
        Self::new(ctx.clone(), input)
    }
}

mod sealed {
    pub trait Sealed<I> {}
    impl<I> Sealed<I> for I {}
    impl<I> Sealed<I> for super::ToolRequest<I> {}
}

/// A `tower::Service` used as a [`Tool`], middleware and all: call it through a
/// [`PolicyTool`] like any other tool.
///
/// `ServiceTool::new(info, service)` takes a [`ServiceToolInfo`] (the tool's name,
/// description, input and output types) and a service whose request is either the input
/// itself or a [`ToolRequest`] of it (to read the idempotency key or the credential), and
/// whose response is the output. Each attempt clones the service and calls the clone once
/// when it is ready ([`ServiceExt::oneshot`](tower::ServiceExt::oneshot)).
///
/// Errors go through [`ServiceToolInfo::classify`]. By default a [`ToolError`] is kept as it
/// is, even when middleware boxed it on the way (tower's `Timeout` turns every error into a
/// `BoxError`), and any other error is transient: the ones middleware adds (tower's
/// `Elapsed`, `Overloaded`) are. Errors of your own types either become `ToolError`s in the
/// service (`impl From<MyError> for ToolError`, then `?`) or are classified by overriding
/// `classify`.
///
/// Middleware that keeps its state in the service value itself sees every attempt as a
/// fresh start, since each attempt calls a clone: tower's `RateLimit` does not limit across
/// attempts. Use the policy's [rate limit](crate::tool::ToolPolicyBuilder::rate_limit), or
/// put the stack behind a `Buffer`. Middleware whose clones share state (`ConcurrencyLimit`,
/// `Buffer`, `LoadShed` over them) works as usual.
///
/// A service that is `Send` but not `Sync` is fine (each attempt clones it under a lock). A
/// boxed service whose error type is `BoxError`, such as `BoxCloneService<_, _, BoxError>`,
/// compiles but makes a spawned call's future fail the `Send` check ("implementation of
/// `Send` is not general enough", rust-lang/rust#110338): box the stack after mapping its
/// errors to [`ToolError`] (`.boxed_clone().map_err(classify_service_error)` in a
/// `ServiceBuilder`).
///
/// ```
/// use flow_runtime::tool::{
///     CallError, IdempotencyKey, PolicyTool, Retry, ServiceTool, ServiceToolInfo, ToolError,
///     ToolPolicy, ToolRequest,
/// };
/// use flow_runtime::{JsonSchema, schemars};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// /// Today's temperature in a city.
/// struct Weather;
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema)]
/// struct City {
///     name: String,
/// }
///
/// impl ServiceToolInfo for Weather {
///     type Input = City;
///     type Output = f32;
///     const NAME: &'static str = "weather";
///     const DESCRIPTION: &'static str = "Today's temperature in a city, in °C.";
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A service that needs the call's context asks for a `ToolRequest`.
/// let service = tower::service_fn(|request: ToolRequest<City>| async move {
///     assert_eq!(request.ctx.idempotency_key().as_str(), "k-1");
///     match request.input.name.as_str() {
///         "Lyon" => Ok(21.5),
///         other => Err(ToolError::permanent(format!("unknown city {other}"))),
///     }
/// });
/// // Boxed as `tower::Layer`s box errors, to show that the classification survives it.
/// let service = tower::ServiceBuilder::new()
///     .map_err(tower::BoxError::from)
///     .service(service);
///
/// let policy = ToolPolicy::builder()
///     .timeout(Duration::from_secs(5))
///     .retry(Retry::exponential(Duration::from_millis(10)))
///     .build();
/// let weather = PolicyTool::new(ServiceTool::new(Weather, service), policy);
/// let key = IdempotencyKey::from("k-1");
///
/// let lyon = weather.call(&key, City { name: "Lyon".into() }).await.unwrap();
/// assert_eq!(lyon, 21.5);
///
/// // The service's permanent error stays permanent: one attempt, no retry.
/// let err = weather.call(&key, City { name: "Atlantis".into() }).await.unwrap_err();
/// assert!(matches!(err, CallError::Rejected { attempt: 1, .. }), "{err:?}");
/// # }
/// ```
pub struct ServiceTool<M, S, R> {
    info: M,
    // Behind a lock so that services that are `Send` but not `Sync` (tower's
    // `BoxCloneService`, say) can be tools: it is held only to clone the service.
    service: Mutex<S>,
    request: PhantomData<fn(R)>,
}

impl<M, S, R> ServiceTool<M, S, R>
where
    M: ServiceToolInfo,
    S: Service<R>,
    R: FromToolCall<M::Input>,
{
    /// `service` as the tool `info` describes.
    pub fn new(info: M, service: S) -> Self {
        Self {
            info,
            service: Mutex::new(service),
            request: PhantomData,
        }
    }
}

impl<M, S, R> ServiceTool<M, S, R> {
    /// The tool's description.
    pub fn info(&self) -> &M {
        &self.info
    }

    /// The service, as it was given.
    pub fn into_service(self) -> S {
        self.service
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<M: Clone, S: Clone, R> Clone for ServiceTool<M, S, R> {
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            service: Mutex::new(self.clone_service()),
            request: PhantomData,
        }
    }
}

impl<M, S: Clone, R> ServiceTool<M, S, R> {
    fn clone_service(&self) -> S {
        // A panic in another clone leaves the service as it was: the lock guards no
        // invariant of ours.
        self.service
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<M: ServiceToolInfo, S, R> fmt::Debug for ServiceTool<M, S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTool")
            .field("tool", &M::NAME)
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}

impl<M, S, R> Tool for ServiceTool<M, S, R>
where
    M: ServiceToolInfo,
    S: Service<R, Response = M::Output> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    R: FromToolCall<M::Input> + Send + 'static,
{
    type Input = M::Input;
    type Output = M::Output;
    const NAME: &'static str = M::NAME;
    const DESCRIPTION: &'static str = M::DESCRIPTION;

    fn call(
        &self,
        ctx: &ToolCtx,
        input: M::Input,
    ) -> impl Future<Output = Result<M::Output, ToolError>> + Send {
        let request = R::from_tool_call(ctx, input);
        let service = self.clone_service();
        async move {
            service
                .oneshot(request)
                .await
                .map_err(|e| M::classify(e.into()))
        }
    }
}

/// How a [`ServiceTool`] classifies errors unless its [`ServiceToolInfo::classify`] says
/// otherwise: a [`ToolError`] is kept as it is; any other error is transient.
///
/// A `ToolError` anywhere in the error's [source](std::error::Error::source) chain counts (a
/// `Buffer` wraps its service's errors, say): the result has its message, its class and its
/// retry-after, with the whole error as its source.
///
/// ```
/// use flow_runtime::tool::{ToolError, classify_service_error};
/// use std::time::Duration;
///
/// let busy = ToolError::transient("busy").with_retry_after(Duration::from_secs(1));
/// let kept = classify_service_error(busy.into());
/// assert_eq!(kept.retry_after(), Some(Duration::from_secs(1)));
///
/// let bad = classify_service_error(ToolError::permanent("no such city").into());
/// assert!(!bad.is_transient());
///
/// let other = classify_service_error("request timed out".into());
/// assert!(other.is_transient());
/// assert_eq!(other.to_string(), "the service failed");
/// ```
#[must_use]
pub fn classify_service_error(error: BoxError) -> ToolError {
    let error = match error.downcast::<ToolError>() {
        Ok(tool_error) => return *tool_error,
        Err(error) => error,
    };
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<ToolError>() {
            let message = found.to_string();
            let classified = if found.is_transient() {
                ToolError::transient(message)
            } else {
                ToolError::permanent(message)
            };
            let classified = match found.retry_after() {
                Some(wait) => classified.with_retry_after(wait),
                None => classified,
            };
            return classified.with_source(error);
        }
        source = cause.source();
    }
    ToolError::transient("the service failed").with_source(error)
}

/// A tool with its policy, as a `tower::Service` of `(key, input)` requests: for code that
/// speaks tower (a `Steer`, a `Balance`, an axum handler's state) and should call tools with
/// their retries, limits and credentials.
///
/// Always ready: the policy's limits make calls wait inside [`call`](Service::call), not in
/// `poll_ready`.
///
/// ```
/// use flow_runtime::tool::{IdempotencyKey, PolicyTool, Tool, ToolCtx, ToolError, ToolPolicy};
/// use tower::ServiceExt as _;
///
/// struct Double;
///
/// impl Tool for Double {
///     type Input = i64;
///     type Output = i64;
///     const NAME: &'static str = "double";
///     const DESCRIPTION: &'static str = "Doubles a number.";
///     async fn call(&self, _ctx: &ToolCtx, n: i64) -> Result<i64, ToolError> {
///         Ok(2 * n)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let double = PolicyTool::new(Double, ToolPolicy::default());
/// let answer = double.oneshot((IdempotencyKey::from("k"), 21)).await.unwrap();
/// assert_eq!(answer, 42);
/// # }
/// ```
impl<T: Tool> Service<(IdempotencyKey, T::Input)> for PolicyTool<T> {
    type Response = T::Output;
    type Error = CallError;
    type Future = Pin<Box<dyn Future<Output = Result<T::Output, CallError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (key, input): (IdempotencyKey, T::Input)) -> Self::Future {
        let tool = self.clone();
        Box::pin(async move { tool.call(&key, input).await })
    }
}
