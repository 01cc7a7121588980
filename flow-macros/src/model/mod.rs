//! The intermediate model: what the user wrote, with every value kept beside its span.
//!
//! `parse` builds it from tokens, `check` validates it into a [`Graph`], and `expand`
//! generates code from both. Nothing in this file is validated yet.

mod graph;

pub(crate) use self::graph::{Arm, Bound, Graph, Next, Role};

use proc_macro2::Span;
use syn::{Ident, Type};

/// One `#[workflow] mod name { … }`.
pub(crate) struct Workflow {
    /// The module name; also the workflow's name.
    pub(crate) name: Ident,
    /// Path to the runtime crate (`#[workflow(crate = path)]`), `::flow_runtime` by default.
    pub(crate) krate: syn::Path,
    /// The dependency type steps receive through `&Ctx<Deps>` (`#[workflow(deps = T)]`), `()` by default.
    pub(crate) deps: Type,
    /// Whether the typestate API (`Flow`, `state`, one method per step) is generated
    /// (`#[workflow(typestate = false)]` turns it off), `true` by default.
    pub(crate) typestate: bool,
    pub(crate) steps: Vec<Step>,
    /// Enums named by some step's `routes = …`, found among the module's items.
    pub(crate) enums: Vec<RouteEnum>,
    /// The module's other enums, with their variants' names: an enum a step returns without
    /// `routes = …` may be a forgotten one.
    pub(crate) unrouted_enums: Vec<(Ident, Vec<Ident>)>,
    /// Names of the user's own items, to report collisions with generated ones.
    pub(crate) item_names: Vec<Ident>,
    /// The module has no `use` and its steps name a type it does not define: it most likely
    /// lacks `use super::*;` (which the expansion then adds, so this is the only error).
    pub(crate) missing_use: Option<syn::Error>,
}

/// One `#[step(…)] async fn`.
pub(crate) struct Step {
    pub(crate) name: Ident,
    pub(crate) entry: Option<Span>,
    pub(crate) exit: Option<Span>,
    /// `after = a`, `after = [a, b]` (a join) or `after = a | b` (converging routes).
    pub(crate) after: Vec<Ident>,
    pub(crate) after_span: Option<Span>,
    /// The span of the first `|` when `after` lists alternatives (`after = a | b`): the step
    /// continues after whichever of them ran, instead of waiting for all of them.
    pub(crate) converge: Option<Span>,
    /// `routes = Enum`.
    pub(crate) routes: Option<Ident>,
    /// `workers = N`.
    pub(crate) workers: Option<(usize, Span)>,
    /// `tools = [A, B]`: the tool types the step may call, and the span of `tools`.
    pub(crate) tools: Vec<Type>,
    pub(crate) tools_span: Option<Span>,
    /// `approve = [A]`: the tools whose every call needs a person's approval (each must be in
    /// `tools`), and the span of `approve`.
    pub(crate) approve: Vec<Type>,
    pub(crate) approve_span: Option<Span>,
    /// `event = T`: the step waits for an event of type `T` (its last parameter is `Event<T>`).
    pub(crate) event: Option<(Type, Span)>,
    /// `timeout = expr`: how long the event wait, or a request for an approval, lasts (a
    /// `Duration`).
    pub(crate) timeout: Option<(syn::Expr, Span)>,
    /// `T` when the step returns `Result<Sleep<T>, E>`: the next step gets `T` when the sleep
    /// is over.
    pub(crate) sleep: Option<Type>,
    /// Span of `fn` when the function is not `async`.
    pub(crate) not_async: Option<Span>,
    pub(crate) receiver: Option<Span>,
    /// What is wrong with the step's generics (lifetimes used only by the context are fine).
    pub(crate) generics: Option<(Span, Generics)>,
    /// The context parameter (the first parameter, when its type is a reference).
    pub(crate) ctx: Option<Type>,
    /// `X` when the context's type is `&Ctx<D, tools::X>` as written: the step's tool marker,
    /// which the macro names after the step (`tools::Search` for `search`).
    pub(crate) ctx_marker: Option<Ident>,
    /// The data parameters, in order (without the `#[from(step)]` ones).
    pub(crate) inputs: Vec<Input>,
    /// The `#[from(step)]` parameters, in order: earlier steps' outputs, taken by reference.
    pub(crate) earlier: Vec<Earlier>,
    /// The declared return type; `None` for `-> ()`.
    pub(crate) output: Option<Type>,
    /// How flow reads the output and error from `output`.
    pub(crate) returns: Returns,
    /// Span of the parameter list, for errors about the number of parameters.
    pub(crate) params_span: Span,
}

impl Step {
    /// `after = [a, b, …]`: the step waits for every branch of one fan-out.
    pub(crate) fn is_join(&self) -> bool {
        self.after.len() > 1 && self.converge.is_none()
    }
}

/// How a step's return type gives its output `T` and error `E`, read from the type as written
/// (the macro cannot resolve an alias):
/// - `Result<T, E>` (any path ending in `Result` with two type arguments): split;
/// - a path ending in `Result` otherwise (`io::Result<T>`, `fmt::Result`), or any path with one
///   type argument (`Fallible<T>`, `QueryResult<T>`) that is not a known non-`Result` type nor a
///   struct or enum of the module: assumed to be an alias of `Result`, read through the runtime's
///   `StepReturn` (a wrong guess, a generic struct from outside the module such as
///   `Page<String>`, is a type error there, which rustc repeats at each use of the step's types;
///   `tests/ui/fail/signature/returns_generic_struct.rs` pins it);
/// - anything else (`SearchResult`, `u32`, a tuple, an alias without a parameter): refused by
///   `check`, since every use of the step's output would fail to resolve.
pub(crate) enum Returns {
    Result { ok: Box<Type>, err: Box<Type> },
    Alias,
    Other,
}

/// A data parameter of a step.
pub(crate) struct Input {
    /// The parameter's pattern, as written (`claim`).
    pub(crate) pat: String,
    pub(crate) ty: Type,
    /// When a data parameter is a reference: the parameter taken by value (`trip: String`).
    pub(crate) reference: Option<String>,
}

/// A `#[from(step)] name: &T` parameter: the output of a step that runs before this one.
pub(crate) struct Earlier {
    /// The step named in `#[from(…)]`.
    pub(crate) from: Ident,
    /// The parameter's pattern, as written (`trip`).
    pub(crate) pat: String,
    /// `T` in `&T`.
    pub(crate) ty: Type,
}

/// Why a step's generics cannot be accepted.
pub(crate) enum Generics {
    /// Type or const parameters, or bounds; `over_ctx` names a parameter the context's type uses.
    Types { over_ctx: Option<String> },
    /// A lifetime the step's data or output borrows with.
    BorrowedData(String),
}

/// An enum a routing step returns; each variant names the step it leads to.
pub(crate) struct RouteEnum {
    pub(crate) name: Ident,
    pub(crate) generics: Option<Span>,
    pub(crate) variants: Vec<Variant>,
}

pub(crate) struct Variant {
    pub(crate) name: Ident,
    /// The single unnamed field; `None` when the variant has another shape.
    pub(crate) payload: Option<Type>,
    pub(crate) shape_span: Span,
    /// The target step: `#[to(step)]`, or the variant's name in snake case.
    pub(crate) to: Ident,
    /// `#[to(step, max = N, exhausted = other)]`.
    pub(crate) max: Option<(u32, Span)>,
    pub(crate) exhausted: Option<Ident>,
}
