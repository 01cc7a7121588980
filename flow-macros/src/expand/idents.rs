//! The identifiers every part of the expansion shares: a step's name as users read it, its
//! `FlowState`/`FlowError` variant, and the `__flow_` aliases and functions named after it.

use super::Gen;
use crate::model::Next;
use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{Ident, Type};

impl Gen<'_> {
    /// The step's name as users read it (`r#match` → `match`).
    pub(crate) fn name(&self, i: usize) -> &str {
        &self.names[i]
    }
    /// The position of the step named `name`.
    pub(crate) fn index(&self, name: &Ident) -> Option<usize> {
        self.wf.steps.iter().position(|s| &s.name == name)
    }
    pub(crate) fn fn_ident(&self, i: usize) -> &Ident {
        &self.wf.steps[i].name
    }
    /// `give_up` → `GiveUp`: the step's variant in `FlowState` and `FlowError`, and its marker.
    pub(crate) fn variant(&self, i: usize) -> Ident {
        self.variants[i].clone()
    }
    // The type aliases are named in camel case after the step's variant (`__FlowOutGiveUp`),
    // so that they need no `#[allow(non_camel_case_types)]` each: three attributes a step fewer
    // for rustc to read (benches/HISTORY.md).
    pub(crate) fn out(&self, i: usize) -> Ident {
        format_ident!("__FlowOut{}", self.variants[i])
    }
    pub(crate) fn err(&self, i: usize) -> Ident {
        format_ident!("__FlowErr{}", self.variants[i])
    }
    /// The input of a step that takes one (every role but a join).
    pub(crate) fn inp(&self, i: usize) -> Ident {
        format_ident!("__FlowIn{}", self.variants[i])
    }
    /// Input `k` of a join (the number first: `__FlowJoinIn1Step` and `__FlowJoinIn11Step1`
    /// stay apart).
    pub(crate) fn inp_k(&self, i: usize, k: usize) -> Ident {
        format_ident!("__FlowJoinIn{}{}", k, self.variants[i])
    }
    /// Conversion along the edge `from → to`.
    pub(crate) fn edge(&self, to: usize, from: &str) -> Ident {
        format_ident!("__flow_to_{}_from_{}", self.name(to), from)
    }
    /// The check that a step's context parameter has the workflow's context type.
    pub(crate) fn ctx_check(&self, i: usize) -> Ident {
        format_ident!("__flow_ctx_of_{}", self.name(i))
    }
    /// Checks that a routing step returns its route enum.
    pub(crate) fn routes_fn(&self, router: usize) -> Ident {
        format_ident!("__flow_routes_{}", self.name(router))
    }
    pub(crate) fn clone_fn(&self, fork: usize) -> Ident {
        format_ident!("__flow_clone_{}", self.name(fork))
    }
    pub(crate) fn to_output(&self, exit: usize) -> Ident {
        format_ident!("__flow_output_from_{}", self.name(exit))
    }
    pub(crate) fn route_edge(&self, router: usize, variant: &Ident) -> Ident {
        format_ident!(
            "__flow_route_{}_{}",
            self.name(router),
            crate::naming::variant_snake(variant)
        )
    }
    pub(crate) fn exhaust_edge(&self, router: usize, variant: &Ident) -> Ident {
        format_ident!(
            "__flow_exhaust_{}_{}",
            self.name(router),
            crate::naming::variant_snake(variant)
        )
    }
    pub(crate) fn counter(&self, c: usize) -> Ident {
        let (router, variant) = self.graph.counters[c];
        let route = self.route_enum(router);
        let v = &route.variants[variant].name;
        format_ident!("{}_{}", self.name(router), crate::naming::variant_snake(v))
    }
    pub(crate) fn route_enum(&self, router: usize) -> &crate::model::RouteEnum {
        match &self.graph.next[router] {
            Next::Route { enum_index, .. } => &self.wf.enums[*enum_index],
            _ => &self.wf.enums[0],
        }
    }
    /// The workflow's output type: the first exit's output.
    pub(crate) fn output() -> Ident {
        format_ident!("__FlowOutput")
    }
    pub(crate) fn deps(&self) -> &Type {
        &self.wf.deps
    }
    /// Span of data parameter `k` of step `i`, to point type errors at the user's signature.
    pub(crate) fn input_span(&self, i: usize, k: usize) -> Span {
        self.wf.steps[i]
            .inputs
            .get(k)
            .map_or_else(Span::call_site, |input| input.ty.span())
    }
    pub(crate) fn output_span(&self, i: usize) -> Span {
        self.wf.steps[i]
            .output
            .as_ref()
            .map_or_else(Span::call_site, Spanned::span)
    }
}
