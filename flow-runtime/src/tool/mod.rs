//! Integration: tools a workflow calls, with their retries, timeouts, rate and concurrency limits, and credentials.
//!
//! A [`Tool`] makes one attempt at one thing (an HTTP request, a model call) and classifies its
//! failures as [transient or permanent](ToolError). A [`ToolPolicy`] says once per tool how it
//! is called: [timeout](ToolPolicyBuilder::timeout), [`Retry`], [`RateLimit`]s, concurrency, and
//! [`Auth`] with a [`Credential`]. A [`PolicyTool`] applies the policy to every call and hands
//! each attempt a [`ToolCtx`] with the call's [`IdempotencyKey`], the attempt number and the
//! loaded credential.

mod auth;
mod ctx;
mod error;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod limit;
mod policy;
mod redact;
#[cfg(feature = "tower")]
mod service;
mod spec;
mod stack;
mod toolbox;

pub use self::auth::{Auth, AuthHeader, Credential};
pub use self::ctx::{IdempotencyKey, ToolCtx, Visit};
pub(crate) use self::error::AttemptError;
pub use self::error::{CallError, CredentialError, Denied, ToolError};
pub(crate) use self::policy::{
    Bounds, DEFAULT_DEADLINE, DEFAULT_MAX_RETRY_AFTER, DEFAULT_TIMEOUT, Ending,
};
pub use self::policy::{RateLimit, Retry, ToolPolicy, ToolPolicyBuilder};
pub(crate) use self::redact::Redactor;
#[cfg(any(feature = "http", feature = "otel"))]
pub(crate) use self::redact::masked_url;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use self::service::{
    FromToolCall, ServiceTool, ServiceToolInfo, ToolRequest, classify_service_error,
};
pub use self::spec::{Catalogue, Tool, ToolSpec};
pub use self::stack::PolicyTool;
pub use self::toolbox::{CanCall, NeedsApproval, NoTools, ToolCall, Toolbox};
pub use secrecy::{ExposeSecret, SecretString};
