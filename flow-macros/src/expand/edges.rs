//! One conversion function per edge of the graph.
//!
//! An edge's conversion goes through a trait implemented only for `T → T`, carrying
//! `#[diagnostic::on_unimplemented]`: when one step's output is not the next step's input,
//! the error names both steps and points at the user's parameter, instead of a bare
//! "mismatched types" inside generated code.

use super::{Concat, Gen, respan};
use crate::model::{Next, Role};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::Ident;

/// One conversion per edge, each through its own diagnostic trait.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    let wf = &g.wf.name;
    for (i, next) in g.graph.next.iter().enumerate() {
        let from = g.name(i);
        match next {
            Next::Exit if i == g.graph.exits[0] => {
                // The first exit defines the output type: nothing to check.
                let (f, o, output) = (g.to_output(i), g.out(i), Gen::output());
                out.concat(quote! {
                    #[inline]
                    fn #f(value: #o) -> #output { value }
                });
            }
            Next::Exit => {
                let first = g.graph.exits[0];
                let message = format!(
                    "every exit of workflow `{wf}` returns the workflow's output: `{}` returns `{{T}}`, but `{from}` returns `{{Self}}`",
                    g.name(first)
                );
                out.concat(feed(
                    g,
                    &g.to_output(i),
                    &g.out(i),
                    &Gen::output(),
                    &message,
                    &format!("`{from}` is an exit"),
                    "make every exit step return the same `Result<T, _>`",
                    g.output_span(i),
                ));
            }
            Next::Step(s) => {
                let to = g.name(*s);
                let (message, note) = if g.wf.steps[*s].workers.is_some() {
                    (
                        format!(
                            "step `{to}` has `workers`, so `{from}` must return a `Vec` of its input: `{{T}}`, but `{from}` returns `{{Self}}`"
                        ),
                        format!(
                            "`{to}` runs once per item of `{from}`'s `Vec`, and the next step receives a `Vec` of its outputs, in order"
                        ),
                    )
                } else if g.wf.steps[*s].converge.is_some() {
                    (
                        format!(
                            "step `{to}` takes `{{T}}`, but `{from}`, one of the steps it continues after, returns `{{Self}}`"
                        ),
                        format!(
                            "every step in `after = a | b` must return the input of `{to}`: make `{from}` return `Result<{{T}}, _>`"
                        ),
                    )
                } else {
                    (
                        format!(
                            "step `{to}` takes `{{T}}`, but the step before it, `{from}`, returns `{{Self}}`"
                        ),
                        format!(
                            "make `{from}` return `Result<{{T}}, _>`, or change this parameter; a `Valid<…>` input is made by `Valid::new(value)?` in the step before: only the entry step takes raw input"
                        ),
                    )
                };
                out.concat(feed(
                    g,
                    &g.edge(*s, from),
                    &g.out(i),
                    &g.inp(*s),
                    &message,
                    &format!("`{to}` runs after `{from}`"),
                    &note,
                    converging_span(g, *s, i).unwrap_or_else(|| g.input_span(*s, 0)),
                ));
                if g.graph.chain(i).is_some() {
                    out.concat(chain_clone(g, i, to));
                }
            }
            Next::Fork { join } => {
                for b in g.graph.heads(*join) {
                    let to = g.name(b);
                    out.concat(feed(
                        g,
                        &g.edge(b, from),
                        &g.out(i),
                        &g.inp(b),
                        &format!("branch `{to}` takes `{{T}}`, but the step it fans out from, `{from}`, returns `{{Self}}`"),
                        &format!("`{to}` runs after `{from}`"),
                        &format!("every branch of the fan-out after `{from}` receives a clone of its output"),
                        g.input_span(b, 0),
                    ));
                }
                let clone_fn = g.clone_fn(i);
                let clone_trait = format_ident!("__flow_Clone_{}", from);
                let o = g.out(i);
                let message = format!(
                    "step `{from}` fans out to several branches, so its output `{{Self}}` must implement `Clone`"
                );
                let span = g.output_span(i);
                let call = respan(quote!(<#o as #clone_trait>::clone_for_branch(value)), span);
                out.concat(quote! {
                    #[diagnostic::on_unimplemented(
                        message = #message,
                        label = "each branch receives its own copy",
                        note = "derive `Clone` on the output type"
                    )]
                    #[allow(non_camel_case_types)]
                    trait #clone_trait { fn clone_for_branch(&self) -> Self; }
                    impl<T: ::core::clone::Clone> #clone_trait for T {
                        #[inline]
                        fn clone_for_branch(&self) -> Self { ::core::clone::Clone::clone(self) }
                    }
                    #[inline]
                    fn #clone_fn(value: &#o) -> #o { #call }
                });
            }
            Next::Join { join } => {
                let Role::Branch { slot, .. } = g.graph.roles[i] else {
                    continue;
                };
                let to = g.name(*join);
                out.concat(feed(
                    g,
                    &g.edge(*join, from),
                    &g.out(i),
                    &g.inp_k(*join, slot),
                    &format!("join `{to}` takes `{{T}}` from branch `{from}` (parameter {}), but `{from}` returns `{{Self}}`", slot + 1),
                    &format!("this parameter receives the output of `{from}`"),
                    "a join's parameters follow the order of its `after = [...]`",
                    g.input_span(*join, slot),
                ));
            }
            Next::Route { enum_index, arms } => {
                let route = &g.wf.enums[*enum_index];
                let enum_name = &route.name;
                let routed = g.out(i);
                out.concat(feed_ty(
                    g,
                    &g.routes_fn(i),
                    &quote!(#routed),
                    &quote!(#enum_name),
                    &format!("step `{from}` routes with `{enum_name}` (`routes = {enum_name}`), so it must return `Result<{enum_name}, _>`, but it returns `Result<{{Self}}, _>`"),
                    &format!("`{from}` must return `{enum_name}`"),
                    "the returned variant picks the next step",
                    g.output_span(i),
                ));
                for arm in arms {
                    let variant = &route.variants[arm.variant];
                    let to = g.name(arm.target);
                    let payload = variant
                        .payload
                        .as_ref()
                        .map_or_else(|| quote!(()), |t| quote!(#t));
                    out.concat(feed_ty(
                        g,
                        &g.route_edge(i, &variant.name),
                        &payload,
                        &{ let t = g.inp(arm.target); quote!(#t) },
                        &format!("route `{}::{}` carries `{{Self}}`, but the step it leads to, `{to}`, takes `{{T}}`", route.name, variant.name),
                        &format!("`{to}` receives this route's value"),
                        "change the variant's field or the step's parameter so they match",
                        converging_span(g, arm.target, i).unwrap_or_else(|| g.input_span(arm.target, 0)),
                    ));
                    if let Some(bound) = &arm.bound {
                        let ex = g.name(bound.exhausted);
                        let k = g.krate;
                        out.concat(feed_ty(
                            g,
                            &g.exhaust_edge(i, &variant.name),
                            &quote!(#k::state::LoopExhausted<#payload>),
                            &{ let t = g.inp(bound.exhausted); quote!(#t) },
                            &format!("step `{ex}` runs when route `{}::{}` goes over its bound, so it takes `{{Self}}`, not `{{T}}`", route.name, variant.name),
                            &format!("`{ex}` receives the exhausted loop"),
                            "`LoopExhausted` carries the number of iterations and the route's last value",
                            g.input_span(bound.exhausted, 0),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `__flow_clone_x` for step `x` of a branch before its last step: the run keeps `x`'s output
/// (for a checkpoint) while `to`, the next step of the branch, runs on a copy.
fn chain_clone(g: &Gen<'_>, i: usize, to: &str) -> TokenStream {
    let from = g.name(i);
    let clone_fn = g.clone_fn(i);
    let clone_trait = format_ident!("__flow_Clone_{}", from);
    let o = g.out(i);
    let message = format!(
        "step `{from}` is followed by `{to}` in its branch of a fan-out, so its output `{{Self}}` must implement `Clone`"
    );
    let note = format!(
        "the branches run at the same time and each step of each is checkpointed: the run keeps `{from}`'s output until `{to}` has run, and `{to}` takes a copy; derive `Clone` on the output type"
    );
    let call = respan(
        quote!(<#o as #clone_trait>::clone_for_branch(value)),
        g.output_span(i),
    );
    quote! {
        #[diagnostic::on_unimplemented(
            message = #message,
            label = "the run keeps it while the next step of the branch runs",
            note = #note
        )]
        #[allow(non_camel_case_types)]
        trait #clone_trait { fn clone_for_branch(&self) -> Self; }
        impl<T: ::core::clone::Clone> #clone_trait for T {
            #[inline]
            fn clone_for_branch(&self) -> Self { ::core::clone::Clone::clone(self) }
        }
        #[inline]
        fn #clone_fn(value: &#o) -> #o { #call }
    }
}

/// When step `to` converges (`after = a | b`): the span of `from` in its `after`, so that each
/// mismatching predecessor gets its own error, on its own name.
fn converging_span(g: &Gen<'_>, to: usize, from: usize) -> Option<Span> {
    let step = &g.wf.steps[to];
    step.converge?;
    let from = &g.wf.steps[from].name;
    step.after.iter().find(|p| *p == from).map(Ident::span)
}

#[allow(clippy::too_many_arguments)]
fn feed(
    g: &Gen<'_>,
    func: &Ident,
    src: &Ident,
    dst: &Ident,
    message: &str,
    label: &str,
    note: &str,
    span: Span,
) -> TokenStream {
    feed_ty(
        g,
        func,
        &quote!(#src),
        &quote!(#dst),
        message,
        label,
        note,
        span,
    )
}

#[allow(clippy::too_many_arguments)]
fn feed_ty(
    _g: &Gen<'_>,
    func: &Ident,
    src: &TokenStream,
    dst: &TokenStream,
    message: &str,
    label: &str,
    note: &str,
    span: Span,
) -> TokenStream {
    let tr = format_ident!(
        "__flow_edge_{}",
        func.to_string().trim_start_matches("__flow_")
    );
    let call = respan(quote!(<#src as #tr<#dst>>::feed(value)), span);
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[allow(non_camel_case_types)]
        trait #tr<T> { fn feed(self) -> T; }
        impl<T> #tr<T> for T {
            #[inline]
            fn feed(self) -> T { self }
        }
        #[inline]
        fn #func(value: #src) -> #dst { #call }
    }
}
