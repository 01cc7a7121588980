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
mod module;
mod naming;
mod parse;
mod pipeline;
mod syntax;

use proc_macro::TokenStream;

// flow-runtime re-exports these two with its reference pages in front (its `docs/*.md`), and
// rustdoc appends the text below to them: it ends those pages, and is all this crate says.

/// Defined in `flow-macros`, a private detail of `flow-runtime`: use it as
/// `flow_runtime::workflow` (also in `flow_runtime::prelude`), documented there.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::workflow(args.into(), item.into()).into()
}

/// `#[workflow]` reads and removes these attributes; on its own, outside such a module,
/// `#[step]` is an error. Defined in `flow-macros`, a private detail of `flow-runtime`: use it as
/// `flow_runtime::step` (also in `flow_runtime::prelude`), documented there.
#[proc_macro_attribute]
pub fn step(_args: TokenStream, item: TokenStream) -> TokenStream {
    parse::stray_step(&item.into()).into()
}

#[cfg(test)]
mod snapshots;
