//! Everything a workflow module needs: `use flow_runtime::prelude::*;`.

pub use crate::error::RuntimeError;
pub use crate::input::{Invalid, Valid};
pub use crate::state::{Ctx, Event, LoopExhausted, RunId, Sleep, Workflow};
pub use crate::store::{MemoryStore, Store};
pub use crate::tool::{
    Auth, CallError, Credential, IdempotencyKey, PolicyTool, RateLimit, Retry, Tool, ToolCtx,
    ToolError, ToolPolicy, Toolbox,
};
pub use crate::{step, workflow};
// `JsonSchema` (the trait and its derive) and the `schemars` path the derive expands to, so that
// `#[derive(JsonSchema)]` works without a `schemars` dependency of the user's own.
pub use crate::{JsonSchema, schemars};
