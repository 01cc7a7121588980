//! Names every part of the expansion shares: type aliases for each step's input, output and
//! error, and one conversion function per edge of the graph.
//!
//! An edge's conversion goes through a trait implemented only for `T → T`, carrying
//! `#[diagnostic::on_unimplemented]`: when one step's output is not the next step's input,
//! the error names both steps and points at the user's parameter, instead of a bare
//! "mismatched types" inside generated code.

use super::Ctx;
use crate::model::{Next, Role};
use crate::naming::pascal_case;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Ident, Type};

impl Ctx<'_> {
    /// The step's name as users read it (`r#match` → `match`).
    pub(crate) fn name(&self, i: usize) -> String {
        syn::ext::IdentExt::unraw(&self.wf.steps[i].name).to_string()
    }
    pub(crate) fn fn_ident(&self, i: usize) -> &Ident {
        &self.wf.steps[i].name
    }
    /// `give_up` → `GiveUp`: the step's variant in `FlowState` and `FlowError`, and its marker.
    pub(crate) fn variant(&self, i: usize) -> Ident {
        format_ident!("{}", pascal_case(&self.name(i)), span = Span::call_site())
    }
    pub(crate) fn out(&self, i: usize) -> Ident {
        format_ident!("__flow_Out_{}", self.name(i))
    }
    pub(crate) fn err(&self, i: usize) -> Ident {
        format_ident!("__flow_Err_{}", self.name(i))
    }
    /// The input of a step that takes one (every role but a join).
    pub(crate) fn inp(&self, i: usize) -> Ident {
        format_ident!("__flow_In_{}", self.name(i))
    }
    /// Input `k` of a join.
    pub(crate) fn inp_k(&self, i: usize, k: usize) -> Ident {
        format_ident!("__flow_In_{}_{}", self.name(i), k)
    }
    pub(crate) fn exec(&self, i: usize) -> Ident {
        format_ident!("__flow_exec_{}", self.name(i))
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
            crate::naming::snake_case(&variant.to_string())
        )
    }
    pub(crate) fn exhaust_edge(&self, router: usize, variant: &Ident) -> Ident {
        format_ident!(
            "__flow_exhaust_{}_{}",
            self.name(router),
            crate::naming::snake_case(&variant.to_string())
        )
    }
    pub(crate) fn counter(&self, c: usize) -> Ident {
        let (router, variant) = self.graph.counters[c];
        let route = self.route_enum(router);
        let v = &route.variants[variant].name;
        format_ident!(
            "{}_{}",
            self.name(router),
            crate::naming::snake_case(&v.to_string())
        )
    }
    pub(crate) fn route_enum(&self, router: usize) -> &crate::model::RouteEnum {
        match &self.graph.next[router] {
            Next::Route { enum_index, .. } => &self.wf.enums[*enum_index],
            _ => &self.wf.enums[0],
        }
    }
    /// The workflow's output type: the first exit's output.
    pub(crate) fn output() -> Ident {
        format_ident!("__flow_Output")
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

pub(crate) fn generate(cx: &Ctx<'_>) -> TokenStream {
    let k = cx.krate;
    let mut out = TokenStream::new();
    for (i, step) in cx.wf.steps.iter().enumerate() {
        let (o, e) = (cx.out(i), cx.err(i));
        // Steps without a return type were rejected by `check`.
        let ret = step
            .output
            .as_ref()
            .map_or_else(|| quote!(()), |t| quote!(#t));
        let one = format_ident!("__flow_One_{}", cx.name(i));
        // A step with workers returns one output per item: the next step sees them all.
        let out_ty = if step.workers.is_some() {
            quote!(::std::vec::Vec<#one>)
        } else {
            quote!(#one)
        };
        let span = cx.output_span(i);
        let step_return = respan(quote!(#k::__private::StepReturn), span);
        let assert = respan(quote!(#k::__private::assert_step_error::<#e>()), span);
        // `Result<T, E>` as written: name `T` and `E` directly, so that a public item using the
        // output never mentions the error type (a private error type would leak otherwise).
        // `assert_step_return` checks that the split agrees with `StepReturn`.
        let (ok_ty, err_ty) = match step.output.as_ref().and_then(split_result) {
            Some((t, e)) => {
                let check = respan(
                    quote!(#k::__private::assert_step_return::<#ret, #t, #e>()),
                    span,
                );
                out.extend(quote!(const _: () = #check;));
                (quote!(#t), quote!(#e))
            }
            None => (
                quote!(<#ret as #step_return>::Ok),
                quote!(<#ret as #step_return>::Err),
            ),
        };
        // `Result<Sleep<T>, E>`: the next step sees `T`.
        let ok_ty = match &step.sleep {
            Some(t) => quote!(#t),
            None => ok_ty,
        };
        out.extend(quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #one = #ok_ty;
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #o = #out_ty;
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            type #e = #err_ty;
            const _: () = #assert;
        });
        if let Role::Join { .. } = &cx.graph.roles[i] {
            for (n, input) in step.inputs.iter().enumerate() {
                let alias = cx.inp_k(i, n);
                let ty = &input.ty;
                out.extend(quote! {
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    type #alias = #ty;
                });
            }
        } else {
            let alias = cx.inp(i);
            let ty = &step.inputs[0].ty;
            let ty = if step.workers.is_some() {
                quote!(::std::vec::Vec<#ty>)
            } else {
                quote!(#ty)
            };
            out.extend(quote! {
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                type #alias = #ty;
            });
        }
    }
    let first_exit = cx.out(cx.graph.exits[0]);
    let output = Ctx::output();
    out.extend(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        type #output = #first_exit;
    });
    out.extend(edges(cx));
    out.extend(contexts(cx));
    out.extend(stored(cx));
    out
}

/// One check per step that takes a context: its type must be `&Ctx<Deps>`.
fn contexts(cx: &Ctx<'_>) -> TokenStream {
    let wf = &cx.wf.name;
    let deps = cx.deps();
    let deps_text = quote!(#deps).to_string();
    let mut out = TokenStream::new();
    for (i, step) in cx.wf.steps.iter().enumerate() {
        if step.ctx.is_none() {
            continue;
        }
        let name = cx.name(i);
        let tr = cx.ctx_check(i);
        let message = format!(
            "step `{name}` takes its context as `{{T}}`, but the context of workflow `{wf}` is `{{Self}}`"
        );
        let note = if step.tools_span.is_some() {
            format!(
                "step `{name}` declares tools, so its context is `&Ctx<{deps_text}, tools::{}>`: take `ctx: &Ctx<{deps_text}, tools::{}>`",
                cx.variant(i),
                cx.variant(i)
            )
        } else if deps_text == "()" {
            "the workflow names no dependencies: add `#[workflow(deps = YourDeps)]`, or take `ctx: &Ctx`".to_owned()
        } else {
            format!(
                "`#[workflow(deps = {deps_text})]` makes the context `&Ctx<{deps_text}>`: take `ctx: &Ctx<{deps_text}>`"
            )
        };
        out.extend(quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "the context's type", note = #note)]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            trait #tr<T> { fn feed(self) -> T; }
            impl<T> #tr<T> for T {
                #[inline]
                fn feed(self) -> T { self }
            }
        });
    }
    out
}

/// What a checkpoint stores must be serde-serialisable; checked at the user's type, so the error
/// names it there rather than inside `FlowState`'s impls, once for both derives (see
/// `__private::stored_check`).
fn stored(cx: &Ctx<'_>) -> TokenStream {
    let k = cx.krate;
    let mut calls = TokenStream::new();
    let mut assert = |f: TokenStream, ty: TokenStream, span: Span| {
        let call = respan(
            quote!((&&#k::__private::stored_check::Probe::<#ty>::new()).#f();),
            span,
        );
        calls.extend(call);
    };
    for (i, role) in cx.graph.roles.iter().enumerate() {
        match role {
            Role::Entry | Role::Single => {
                if let Some(inner) = cx.wf.steps[i]
                    .inputs
                    .first()
                    .and_then(|input| crate::syntax::generic_args(&input.ty, "Valid"))
                    .and_then(|args| args.first().copied())
                {
                    // `Valid<T>` as written. The entry's comes from the caller, perhaps in
                    // another crate: `T` also needs garde rules, said in the same error. A
                    // later step's is returned by the step before it, whose body can only build
                    // it through `Valid::new` or deserialising, both of which require the rules
                    // and say so at the user's call: checking them here too would report one
                    // missing derive twice.
                    let f = if matches!(role, Role::Entry) {
                        quote!(valid)
                    } else {
                        quote!(value)
                    };
                    assert(f, quote!(#inner), cx.input_span(i, 0));
                    continue;
                }
                let t = cx.inp(i);
                assert(quote!(value), quote!(#t), cx.input_span(i, 0));
            }
            Role::Join { fork, branches } => {
                let t = cx.out(*fork);
                assert(quote!(value), quote!(#t), cx.output_span(*fork));
                for &b in branches {
                    let t = cx.out(b);
                    assert(quote!(value), quote!(#t), cx.output_span(b));
                }
            }
            Role::Branch { .. } => {}
        }
    }
    let first = cx.graph.exits[0];
    let t = Ctx::output();
    assert(quote!(value), quote!(#t), cx.output_span(first));
    quote! {
        const _: () = {
            #[allow(dead_code, unused_imports)]
            fn __flow_stored() {
                use #k::__private::stored_check::{ValidMissing as _, ValidOk as _, ValueMissing as _, ValueOk as _};
                #calls
            }
        };
    }
}

/// One conversion per edge, each through its own diagnostic trait.
fn edges(cx: &Ctx<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    let wf = &cx.wf.name;
    for (i, next) in cx.graph.next.iter().enumerate() {
        let from = cx.name(i);
        match next {
            Next::Exit if i == cx.graph.exits[0] => {
                // The first exit defines the output type: nothing to check.
                let (f, o, output) = (cx.to_output(i), cx.out(i), Ctx::output());
                out.extend(quote! {
                    #[doc(hidden)]
                    #[inline]
                    fn #f(value: #o) -> #output { value }
                });
            }
            Next::Exit => {
                let first = cx.graph.exits[0];
                let message = format!(
                    "every exit of workflow `{wf}` returns the workflow's output: `{}` returns `{{T}}`, but `{from}` returns `{{Self}}`",
                    cx.name(first)
                );
                out.extend(feed(
                    cx,
                    &cx.to_output(i),
                    &cx.out(i),
                    &Ctx::output(),
                    &message,
                    &format!("`{from}` is an exit"),
                    "make every exit step return the same `Result<T, _>`",
                    cx.output_span(i),
                ));
            }
            Next::Step(s) => {
                let to = cx.name(*s);
                let (message, note) = if cx.wf.steps[*s].workers.is_some() {
                    (
                        format!(
                            "step `{to}` has `workers`, so `{from}` must return a `Vec` of its input: `{{T}}`, but `{from}` returns `{{Self}}`"
                        ),
                        format!(
                            "`{to}` runs once per item of `{from}`'s `Vec`, and the next step receives a `Vec` of its outputs, in order"
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
                out.extend(feed(
                    cx,
                    &cx.edge(*s, &from),
                    &cx.out(i),
                    &cx.inp(*s),
                    &message,
                    &format!("`{to}` runs after `{from}`"),
                    &note,
                    cx.input_span(*s, 0),
                ));
            }
            Next::Fork { join } => {
                let Role::Join { branches, .. } = &cx.graph.roles[*join] else {
                    continue;
                };
                for &b in branches {
                    let to = cx.name(b);
                    out.extend(feed(
                        cx,
                        &cx.edge(b, &from),
                        &cx.out(i),
                        &cx.inp(b),
                        &format!("branch `{to}` takes `{{T}}`, but the step it fans out from, `{from}`, returns `{{Self}}`"),
                        &format!("`{to}` runs after `{from}`"),
                        &format!("every branch of the fan-out after `{from}` receives a clone of its output"),
                        cx.input_span(b, 0),
                    ));
                }
                let clone_fn = cx.clone_fn(i);
                let clone_trait = format_ident!("__flow_Clone_{}", from);
                let o = cx.out(i);
                let message = format!(
                    "step `{from}` fans out to several branches, so its output `{{Self}}` must implement `Clone`"
                );
                let span = cx.output_span(i);
                let call = respan(quote!(<#o as #clone_trait>::clone_for_branch(value)), span);
                out.extend(quote! {
                    #[diagnostic::on_unimplemented(
                        message = #message,
                        label = "each branch receives its own copy",
                        note = "derive `Clone` on the output type"
                    )]
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    trait #clone_trait { fn clone_for_branch(&self) -> Self; }
                    impl<T: ::core::clone::Clone> #clone_trait for T {
                        #[inline]
                        fn clone_for_branch(&self) -> Self { ::core::clone::Clone::clone(self) }
                    }
                    #[doc(hidden)]
                    #[inline]
                    fn #clone_fn(value: &#o) -> #o { #call }
                });
            }
            Next::Join { join } => {
                let Role::Branch { slot, .. } = cx.graph.roles[i] else {
                    continue;
                };
                let to = cx.name(*join);
                out.extend(feed(
                    cx,
                    &cx.edge(*join, &from),
                    &cx.out(i),
                    &cx.inp_k(*join, slot),
                    &format!("join `{to}` takes `{{T}}` from branch `{from}` (parameter {}), but `{from}` returns `{{Self}}`", slot + 1),
                    &format!("this parameter receives the output of `{from}`"),
                    "a join's parameters follow the order of its `after = [...]`",
                    cx.input_span(*join, slot),
                ));
            }
            Next::Route { enum_index, arms } => {
                let route = &cx.wf.enums[*enum_index];
                let enum_name = &route.name;
                let routed = cx.out(i);
                out.extend(feed_ty(
                    cx,
                    &cx.routes_fn(i),
                    &quote!(#routed),
                    &quote!(#enum_name),
                    &format!("step `{from}` routes with `{enum_name}` (`routes = {enum_name}`), so it must return `Result<{enum_name}, _>`, but it returns `Result<{{Self}}, _>`"),
                    &format!("`{from}` must return `{enum_name}`"),
                    "the returned variant picks the next step",
                    cx.output_span(i),
                ));
                for arm in arms {
                    let variant = &route.variants[arm.variant];
                    let to = cx.name(arm.target);
                    let payload = variant
                        .payload
                        .as_ref()
                        .map_or_else(|| quote!(()), |t| quote!(#t));
                    out.extend(feed_ty(
                        cx,
                        &cx.route_edge(i, &variant.name),
                        &payload,
                        &{ let t = cx.inp(arm.target); quote!(#t) },
                        &format!("route `{}::{}` carries `{{Self}}`, but the step it leads to, `{to}`, takes `{{T}}`", route.name, variant.name),
                        &format!("`{to}` receives this route's value"),
                        "change the variant's field or the step's parameter so they match",
                        cx.input_span(arm.target, 0),
                    ));
                    if let Some(bound) = &arm.bound {
                        let ex = cx.name(bound.exhausted);
                        let k = cx.krate;
                        out.extend(feed_ty(
                            cx,
                            &cx.exhaust_edge(i, &variant.name),
                            &quote!(#k::state::LoopExhausted<#payload>),
                            &{ let t = cx.inp(bound.exhausted); quote!(#t) },
                            &format!("step `{ex}` runs when route `{}::{}` goes over its bound, so it takes `{{Self}}`, not `{{T}}`", route.name, variant.name),
                            &format!("`{ex}` receives the exhausted loop"),
                            "`LoopExhausted` carries the number of iterations and the route's last value",
                            cx.input_span(bound.exhausted, 0),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn feed(
    cx: &Ctx<'_>,
    func: &Ident,
    src: &Ident,
    dst: &Ident,
    message: &str,
    label: &str,
    note: &str,
    span: Span,
) -> TokenStream {
    feed_ty(
        cx,
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
    _cx: &Ctx<'_>,
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
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        trait #tr<T> { fn feed(self) -> T; }
        impl<T> #tr<T> for T {
            #[inline]
            fn feed(self) -> T { self }
        }
        #[doc(hidden)]
        #[inline]
        fn #func(value: #src) -> #dst { #call }
    }
}

/// Gives every token of `tokens` the span `span`, so that an error in generated code points
/// at the user's tokens (`quote_spanned!` leaves interpolated identifiers at the call site).
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let proc_macro2::TokenTree::Group(g) = &tt {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = proc_macro2::TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// `Result<T, E>` (any path ending in `Result` with two type arguments) → `(T, E)`.
fn split_result(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(t), Some(e), None) if args.args.len() == 2 => Some((t, e)),
        _ => None,
    }
}
