//! Earlier outputs (`#[from(x)] name: &T`): the check that `T` is `x`'s output, the clone that
//! keeps `x`'s output while its next step takes it, and the pieces the state, the resume loop
//! and the typestate API use to carry the outputs each state needs (`Graph::carry`).
//!
//! A state carries an earlier output as a field named after its step, and code that runs a
//! step holds them as one tuple, `kept`, in the order of `Graph::carry`.

use super::{Concat, Gen, respan};
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::spanned::Spanned;

/// The type checks of every `#[from]` parameter and the clone of every output read by one.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    for (s, step) in g.wf.steps.iter().enumerate() {
        for (k, earlier) in step.earlier.iter().enumerate() {
            let Some(x) = g.index(&earlier.from) else {
                continue;
            };
            let (to, from) = (g.name(s), g.name(x));
            let o = g.out(x);
            let ty = &earlier.ty;
            let f = read_fn(g, s, k);
            let tr = format_ident!("__flow_edge_read_{}_{}", to, k);
            let message = format!(
                "step `{to}` reads `&{{T}}` from `{from}`, but `{from}` returns `{{Self}}`"
            );
            let label = format!("this parameter holds `{from}`'s output");
            let note = format!(
                "`#[from({from})]` lends the step `{from}`'s output: write `{}: &{{Self}}` (or a type it borrows as: `&str` for a `String`, `&[T]` for a `Vec<T>`)",
                earlier.pat
            );
            // The user's type keeps its own spans (a typo in it is reported once, where it is written).
            let span = ty.span();
            let (o, tr) = (respan(quote!(#o), span), respan(quote!(#tr), span));
            let call = quote_spanned!(span=> <#o as #tr<#ty>>::read(value));
            out.concat(quote! {
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                #[allow(non_camel_case_types)]
                trait #tr<T: ?::core::marker::Sized> { fn read(&self) -> &T; }
                impl<T: ?::core::marker::Sized, U: ::core::borrow::Borrow<T>> #tr<T> for U {
                    #[inline]
                    fn read(&self) -> &T { ::core::borrow::Borrow::borrow(self) }
                }
                #[inline]
                fn #f(value: &#o) -> &#ty { #call }
            });
        }
    }
    for x in read(g) {
        let from = g.name(x);
        let readers: Vec<String> =
            g.wf.steps
                .iter()
                .filter(|s| s.earlier.iter().any(|e| g.index(&e.from) == Some(x)))
                .map(|s| format!("`{}`", syn::ext::IdentExt::unraw(&s.name)))
                .collect();
        let o = g.out(x);
        let f = keep_fn(g, x);
        let tr = format_ident!("__flow_Keep_{}", from);
        let message = format!(
            "step `{from}`'s output `{{Self}}` must implement `Clone`: {} read{} it later with `#[from({from})]`, so the run keeps a copy besides the one the next step takes",
            readers.join(", "),
            if readers.len() == 1 { "s" } else { "" }
        );
        let call = respan(quote!(<#o as #tr>::keep(value)), g.output_span(x));
        out.concat(quote! {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = "the run keeps a copy for the steps that read it",
                note = "derive `Clone` on the output type"
            )]
            #[allow(non_camel_case_types)]
            trait #tr { fn keep(&self) -> Self; }
            impl<T: ::core::clone::Clone> #tr for T {
                #[inline]
                fn keep(&self) -> Self { ::core::clone::Clone::clone(self) }
            }
            #[inline]
            fn #f(value: &#o) -> #o { #call }
        });
    }
    out
}

/// The steps some `#[from]` reads, in step order.
fn read(g: &Gen<'_>) -> Vec<usize> {
    let mut read: Vec<usize> =
        g.wf.steps
            .iter()
            .flat_map(|s| s.earlier.iter().filter_map(|e| g.index(&e.from)))
            .collect();
    read.sort_unstable();
    read.dedup();
    read
}

/// `__flow_read_s_k`: `&x`'s output as the `k`-th `#[from]` parameter of step `s` takes it.
fn read_fn(g: &Gen<'_>, s: usize, k: usize) -> Ident {
    format_ident!("__flow_read_{}_{}", g.name(s), k)
}

/// `__flow_keep_x`: a copy of `x`'s output, for the states after it.
pub(crate) fn keep_fn(g: &Gen<'_>, x: usize) -> Ident {
    format_ident!("__flow_keep_{}", g.name(x))
}

/// The outputs the state in which step `i` runs carries: its own, or its join's for a branch.
pub(crate) fn carried<'g>(g: &Gen<'g>, i: usize) -> &'g [usize] {
    match g.graph.roles[i] {
        Role::Branch { join, .. } => &g.graph.carry[join],
        _ => &g.graph.carry[i],
    }
}

/// The state fields of step `i`'s variant that hold earlier outputs: one per carried step.
pub(crate) fn fields(g: &Gen<'_>, i: usize) -> Vec<Ident> {
    carried(g, i).iter().map(|&x| field(g, x)).collect()
}

/// The field holding step `x`'s output.
fn field(g: &Gen<'_>, x: usize) -> Ident {
    g.fn_ident(x).clone()
}

/// Their types (`__FlowOutX`).
pub(crate) fn types(g: &Gen<'_>, i: usize) -> Vec<Ident> {
    carried(g, i).iter().map(|&x| g.out(x)).collect()
}

/// The tuple type `kept` has in step `i`'s state: `(__FlowOutA, __FlowOutB,)`.
pub(crate) fn kept_type(g: &Gen<'_>, i: usize) -> TokenStream {
    let types = types(g, i);
    quote!((#(#types,)*))
}

/// Locals to bind the carried fields of step `i`'s state to (`__flow_k0`, …): a step may
/// be named like any local of the generated code.
pub(crate) fn locals(g: &Gen<'_>, i: usize) -> Vec<Ident> {
    (0..carried(g, i).len())
        .map(|n| format_ident!("__flow_k{}", n))
        .collect()
}

/// The arguments step `i` receives for its `#[from]` parameters, read from `kept` (a reference
/// to the tuple of its state): `, __flow_read_s_0(&kept.1)`.
pub(crate) fn args(g: &Gen<'_>, i: usize, kept: &TokenStream) -> TokenStream {
    let carried = carried(g, i);
    let mut out = TokenStream::new();
    for (k, earlier) in g.wf.steps[i].earlier.iter().enumerate() {
        let Some(pos) = g
            .index(&earlier.from)
            .and_then(|x| carried.iter().position(|&c| c == x))
        else {
            continue;
        };
        let f = read_fn(g, i, k);
        let pos = syn::Index::from(pos);
        out.concat(quote!(, #f(&#kept.#pos)));
    }
    out
}

/// Field initialisers of the state after step `i` whose next position is `next`: each carried
/// output moved out of `kept` (step `i`'s tuple, owned), or copied from `i`'s output (`self_copy`)
/// or, after a join, from a branch's (`__flow_branch_<b>`). `: value` pairs, comma-terminated.
pub(crate) fn next_fields(g: &Gen<'_>, i: usize, next: usize) -> TokenStream {
    let mine = carried(g, i);
    let mut out = TokenStream::new();
    for &x in &g.graph.carry[next] {
        let f = field(g, x);
        let value = source(g, i, mine, x);
        out.concat(quote!(#f: #value,));
    }
    out
}

/// The tuple `kept` of the typestate handle at `next`, after step `i` (see [`next_fields`]).
pub(crate) fn next_kept(g: &Gen<'_>, i: usize, next: usize) -> TokenStream {
    let mine = carried(g, i);
    let values = g.graph.carry[next].iter().map(|&x| source(g, i, mine, x));
    quote!((#(#values,)*))
}

fn source(g: &Gen<'_>, i: usize, mine: &[usize], x: usize) -> TokenStream {
    if let Some(pos) = mine.iter().position(|&c| c == x) {
        let pos = syn::Index::from(pos);
        quote!(__flow_kept.#pos)
    } else if x == i {
        quote!(__flow_self)
    } else {
        let b = format_ident!("__flow_branch_{}", g.name(x));
        quote!(#b)
    }
}

/// Whether some position after step `i` carries `x` (then `i`'s code copies it before its
/// output, or a branch's, is taken).
pub(crate) fn carried_after(g: &Gen<'_>, nexts: &[usize], x: usize) -> bool {
    nexts.iter().any(|&n| g.graph.carry[n].contains(&x))
}

/// `let __flow_self = __flow_keep_i(&out);` when a state after step `i` carries its output.
pub(crate) fn copy_self(g: &Gen<'_>, i: usize, nexts: &[usize], out: &TokenStream) -> TokenStream {
    if carried_after(g, nexts, i) {
        let f = keep_fn(g, i);
        quote!(let __flow_self = #f(&#out);)
    } else {
        quote!()
    }
}

/// The positions a run can be at right after step `i`: its successors' (a fork's join) or
/// none (an exit, or a branch, whose join's arm moves on).
pub(crate) fn nexts(g: &Gen<'_>, i: usize) -> Vec<usize> {
    match &g.graph.next[i] {
        Next::Exit | Next::Join { .. } => Vec::new(),
        Next::Step(s) => vec![*s],
        Next::Fork { join } => vec![*join],
        Next::Route { arms, .. } => arms
            .iter()
            .flat_map(|a| std::iter::once(a.target).chain(a.bound.as_ref().map(|b| b.exhausted)))
            .collect(),
    }
}

/// `let __flow_branch_b = __flow_keep_b(&in_k);` for each branch `b` of join `i` whose output
/// a state after the join carries, before the join takes the outputs (`ins`, in slot order).
pub(crate) fn copy_branches(g: &Gen<'_>, i: usize, nexts: &[usize], ins: &[Ident]) -> TokenStream {
    let Role::Join { branches, .. } = &g.graph.roles[i] else {
        return TokenStream::new();
    };
    let mut out = TokenStream::new();
    for (&b, input) in branches.iter().zip(ins) {
        if carried_after(g, nexts, b) {
            let local = format_ident!("__flow_branch_{}", g.name(b));
            let f = keep_fn(g, b);
            out.concat(quote!(let #local = #f(&#input);));
        }
    }
    out
}

/// `let __flow_kept = (…);` and the argument `&__flow_kept` for a state whose carried fields
/// are bound to `locals`; nothing and `&()` when it carries none.
pub(crate) fn bind_kept(locals: &[Ident]) -> (TokenStream, TokenStream) {
    if locals.is_empty() {
        (TokenStream::new(), quote!(&()))
    } else {
        (
            quote!(let __flow_kept = (#(#locals,)*);),
            quote!(&__flow_kept),
        )
    }
}
