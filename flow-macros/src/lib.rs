//! Procedural macros for `flow`.
//!
//! This crate is a private detail of [`flow-runtime`](https://docs.rs/flow-runtime): depend on
//! `flow-runtime` and use its re-exports. The generated code talks to the runtime only through
//! `flow_runtime::__private`, whose contents may change in any release; `flow-runtime` pins this
//! crate to an exact version for that reason.

mod check;
mod error;
mod expand;
mod model;
mod naming;
mod parse;
mod pipeline;
mod syntax;

use proc_macro::TokenStream;

/// Turns an inline module of `async fn` steps into a typestate workflow.
///
/// See the `flow-runtime` crate documentation for the DSL.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::workflow(args.into(), item.into()).into()
}

/// Marks a step inside a `#[workflow]` module.
///
/// `#[workflow]` reads and removes these attributes; on its own, outside such a module, it is
/// an error.
#[proc_macro_attribute]
pub fn step(_args: TokenStream, item: TokenStream) -> TokenStream {
    parse::stray_step(&item.into()).into()
}

#[cfg(test)]
mod snapshots;
