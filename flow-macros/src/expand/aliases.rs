//! Type aliases for each step's input, output and error (`__FlowInX`, `__FlowOutX`, `__FlowErrX`,
//! after the step's variant `X`), which every other part refers to, with the checks that a step returns
//! `Result<T, E>` with a usable error.

use super::{Concat, Gen, spanned};
use crate::model::{Returns, Role};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

/// The aliases of every step, and of the workflow's output (`__FlowOutput`).
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    // Every step's checks in one `const` body, not two items per step.
    let mut checks = TokenStream::new();
    for (i, step) in g.wf.steps.iter().enumerate() {
        let (o, e) = (g.out(i), g.err(i));
        // Steps without a return type were rejected by `check`.
        let ret = step
            .output
            .as_ref()
            .map_or_else(|| quote!(()), |t| quote!(#t));
        let span = g.output_span(i);
        let step_return = quote_spanned!(span=> __flow_p::StepReturn);
        let e_at = spanned(&e, span);
        let assert = quote_spanned!(span=> __flow_p::assert_step_error::<#e_at>());
        // `Result<T, E>` as written: name `T` and `E` directly, so that a public item using the
        // output never mentions the error type (a private error type would leak otherwise).
        // `assert_step_return` checks that the split agrees with `StepReturn`.
        let (ok_ty, err_ty) = match &step.returns {
            Returns::Result { ok: t, err: e } => {
                // Only the path takes the return type's span: the user's own tokens keep theirs,
                // so a type that does not resolve is reported where it is written, as for the
                // function itself, and rustc shows that error once.
                let check = quote_spanned!(span=> __flow_p::assert_step_return::<#ret, #t, #e>());
                checks.concat(quote!(#check;));
                (quote!(#t), quote!(#e))
            }
            // An alias of `Result` (`io::Result<T>`, `Fallible<T>`): only `StepReturn` knows.
            // (`Returns::Other` was refused by `check`.)
            Returns::Alias | Returns::Other => (
                quote!(<#ret as #step_return>::Ok),
                quote!(<#ret as #step_return>::Err),
            ),
        };
        // `Result<Sleep<T>, E>`: the next step sees `T`.
        let ok_ty = match &step.sleep {
            Some(t) => quote!(#t),
            None => ok_ty,
        };
        checks.concat(quote!(#assert;));
        // A step with workers returns one output per item: the next step sees them all.
        let out_ty = if step.workers.is_some() {
            quote!(::std::vec::Vec<#ok_ty>)
        } else {
            ok_ty
        };
        out.concat(quote! {
            type #o = #out_ty;
            type #e = #err_ty;
        });
        if let Role::Join { .. } = &g.graph.roles[i] {
            for (n, input) in step.inputs.iter().enumerate() {
                let alias = g.inp_k(i, n);
                let ty = &input.ty;
                out.concat(quote!(type #alias = #ty;));
            }
        } else {
            let alias = g.inp(i);
            let ty = &step.inputs[0].ty;
            let ty = if step.workers.is_some() {
                quote!(::std::vec::Vec<#ty>)
            } else {
                quote!(#ty)
            };
            out.concat(quote!(type #alias = #ty;));
        }
    }
    out.concat(quote!(const _: () = { #checks };));
    let first_exit = g.out(g.graph.exits[0]);
    let output = Gen::output();
    out.concat(quote!(type #output = #first_exit;));
    out
}
