//! Checks at the user's types: a step's context is `&Ctx<Deps>` (one diagnostic trait per
//! step that takes a context), and what a checkpoint stores is serde-serialisable.

use super::{Concat, Gen, respan};
use crate::model::Role;
use proc_macro2::{Span, TokenStream};
use quote::quote;

/// The context checks, then the serde check of stored types.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let mut out = contexts(g);
    out.concat(stored(g));
    out
}

/// One check per step that takes a context: its type must be `&Ctx<Deps>`.
fn contexts(g: &Gen<'_>) -> TokenStream {
    let wf = &g.wf.name;
    let deps = g.deps();
    let deps_text = quote!(#deps).to_string();
    let mut out = TokenStream::new();
    for (i, step) in g.wf.steps.iter().enumerate() {
        if step.ctx.is_none() {
            continue;
        }
        let name = g.name(i);
        let tr = g.ctx_check(i);
        let message = format!(
            "step `{name}` takes its context as `{{T}}`, but the context of workflow `{wf}` is `{{Self}}`"
        );
        let note = if step.tools_span.is_some() {
            format!(
                "step `{name}` declares tools, so its context is `&Ctx<{deps_text}, tools::{}>`: take `ctx: &Ctx<{deps_text}, tools::{}>`",
                g.variant(i),
                g.variant(i)
            )
        } else if deps_text == "()" {
            "the workflow names no dependencies: add `#[workflow(deps = YourDeps)]`, or take `ctx: &Ctx`".to_owned()
        } else {
            format!(
                "`#[workflow(deps = {deps_text})]` makes the context `&Ctx<{deps_text}>`: take `ctx: &Ctx<{deps_text}>`"
            )
        };
        out.concat(quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "the context's type", note = #note)]
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
fn stored(g: &Gen<'_>) -> TokenStream {
    let mut calls = TokenStream::new();
    let mut assert = |f: TokenStream, ty: TokenStream, span: Span| {
        let call = respan(
            quote!((&&__flow_p::stored_check::Probe::<#ty>::new()).#f();),
            span,
        );
        calls.concat(call);
    };
    for (i, role) in g.graph.roles.iter().enumerate() {
        match role {
            Role::Entry | Role::Single => {
                if let Some(inner) = g.wf.steps[i]
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
                    assert(f, quote!(#inner), g.input_span(i, 0));
                    continue;
                }
                let t = g.inp(i);
                assert(quote!(value), quote!(#t), g.input_span(i, 0));
            }
            Role::Join { fork, .. } => {
                let t = g.out(*fork);
                assert(quote!(value), quote!(#t), g.output_span(*fork));
                for b in g.graph.chain_steps(i) {
                    let t = g.out(b);
                    assert(quote!(value), quote!(#t), g.output_span(b));
                }
            }
            Role::Branch { .. } => {}
        }
    }
    // Earlier outputs a state carries (`#[from]`).
    let mut carried: Vec<usize> = g.graph.carry.iter().flatten().copied().collect();
    carried.sort_unstable();
    carried.dedup();
    for x in carried {
        let t = g.out(x);
        assert(quote!(value), quote!(#t), g.output_span(x));
    }
    let first = g.graph.exits[0];
    let t = Gen::output();
    assert(quote!(value), quote!(#t), g.output_span(first));
    quote! {
        const _: () = {
            #[allow(dead_code, unused_imports)]
            fn __flow_stored() {
                use __flow_p::stored_check::{ValidMissing as _, ValidOk as _, ValueMissing as _, ValueOk as _};
                #calls
            }
        };
    }
}
