//! The pipeline of `#[workflow]`: tokens → [`parse`] → [`check`] → [`expand`], or, when any
//! check failed, the user's module with the errors and the [fallback](expand::fallback) stubs.
//! The only place that holds the user's raw module; `expand` sees the model and the graph.

use crate::error::Errors;
use crate::{check, expand, parse};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemMod;

/// `#[workflow]`: the expanded module, or the fallback with every error found.
pub(crate) fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut module: ItemMod = match crate::module::parse(item) {
        Ok(module) => module,
        Err(error) => {
            let error = syn::Error::new(
                error.span(),
                format!("`#[workflow]` goes on a module: `#[workflow] mod name {{ … }}` ({error})"),
            );
            return error.to_compile_error();
        }
    };
    let mut errors = Errors::default();
    let mut parsed = parse::workflow(args, &mut module, &mut errors);
    // A `crate = path` other than the default goes through one `use`: when the path is wrong,
    // rustc reports that import once, and every generated path through it stays quiet.
    if let Some(wf) = &mut parsed
        && wf.krate != syn::parse_quote!(::flow_runtime)
    {
        let krate = std::mem::replace(&mut wf.krate, syn::parse_quote!(__flow_krate));
        if let Some((_, items)) = &mut module.content {
            items.push(syn::Item::Verbatim(expand::krate_imports(&krate)));
        }
    }
    // A step whose attribute did not parse would show up again as "does not say when it runs"
    // and the like: report parse errors alone.
    let checked = errors.is_empty();
    let graph = if checked {
        parsed
            .as_ref()
            .and_then(|wf| check::workflow(wf, &mut errors))
    } else {
        None
    };
    if let Some(error) = parsed.as_mut().and_then(|wf| wf.missing_use.take()) {
        errors.push(error);
    }
    let (wf, graph) = match (&parsed, &graph, errors.into_result()) {
        (Some(wf), Some(graph), Ok(())) => (wf, graph),
        (_, _, Err(error)) => {
            return fallback(module, &error.to_compile_error(), parsed.as_ref(), checked);
        }
        _ => {
            let error = syn::Error::new(
                Span::call_site(),
                "internal error in flow-macros: checks failed without an error",
            );
            return fallback(module, &error.to_compile_error(), parsed.as_ref(), checked);
        }
    };
    let (generated, doc) = expand::generate(wf, graph);
    module.attrs.push(syn::parse_quote!(#[doc = #doc]));
    if let Some((_, items)) = &mut module.content {
        items.push(syn::Item::Verbatim(generated));
    }
    let out = quote!(#module);
    if std::env::var_os("FLOW_MACROS_DEBUG").is_some() {
        eprintln!("{out}");
    }
    out
}

/// The expansion when checks failed: the user's items without our attributes, the fallback's
/// stubs, and the errors. `checked`: the checks ran (parsing found no error), so what they
/// report is among `errors`.
fn fallback(
    mut module: ItemMod,
    errors: &TokenStream,
    wf: Option<&crate::model::Workflow>,
    checked: bool,
) -> TokenStream {
    let stubs = expand::fallback::stubs(wf);
    if let Some((_, items)) = &mut module.content {
        if let Some(wf) = wf.filter(|_| checked) {
            quiet_reported(items, wf);
        }
        items.push(syn::Item::Verbatim(stubs));
    }
    quote!(#errors #module)
}

/// Takes out of the user's items what the checks have reported and rustc would report again:
/// a second step of the same name (E0428), a step's `self` parameter; and puts the steps'
/// tool markers into a `mod tools` of the user's (reported as a clash), so that the steps'
/// `tools::Step` do not fail to resolve. One mistake, one error. Only after the checks ran:
/// otherwise nothing reported these, and rustc's errors are the only ones.
fn quiet_reported(items: &mut Vec<syn::Item>, wf: &crate::model::Workflow) {
    let own_tools = items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == "tools" => m.content.as_mut().map(|(_, inner)| inner),
        _ => None,
    });
    let mut impls = Vec::new();
    if let Some(inner) = own_tools {
        let markers = expand::fallback::tool_marker_items(Some(wf));
        let mut taken: Vec<syn::Ident> = inner
            .iter()
            .filter_map(|item| parse::item_ident(item).cloned())
            .collect();
        for item in inner.iter() {
            if let syn::Item::Use(u) = item {
                use_names(&u.tree, &mut taken);
            }
        }
        let clash = markers
            .iter()
            .any(|(name, _, _)| taken.iter().any(|t| t == name));
        if !clash {
            for (_, marker, marker_impls) in markers {
                inner.push(syn::Item::Verbatim(marker));
                impls.push(syn::Item::Verbatim(marker_impls));
            }
        }
    }
    items.extend(impls);
    // Only names the checks reported: two steps of one name, a step that takes `self`.
    let steps_named = |ident: &syn::Ident| wf.steps.iter().filter(|s| s.name == *ident).count();
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| match item {
        syn::Item::Fn(f) if steps_named(&f.sig.ident) > 1 => seen.insert(f.sig.ident.clone()),
        _ => true,
    });
    let takes_self = |ident: &syn::Ident| {
        wf.steps
            .iter()
            .any(|s| s.name == *ident && s.receiver.is_some())
    };
    for item in items {
        if let syn::Item::Fn(f) = item
            && takes_self(&f.sig.ident)
            && f.sig.receiver().is_some()
        {
            f.sig.inputs = std::mem::take(&mut f.sig.inputs)
                .into_iter()
                .filter(|arg| !matches!(arg, syn::FnArg::Receiver(_)))
                .collect();
            // A body that uses `self` would now be reported for it: it gets a stand-in (an
            // `async fn`'s: `!` is not a future, so another fn keeps its body).
            let block = &f.block;
            if f.sig.asyncness.is_some() && mentions_self(quote!(#block)) {
                f.block = syn::parse_quote!({ ::core::unimplemented!() });
                f.attrs.push(syn::parse_quote!(#[allow(unused_variables)]));
            }
        }
    }
}

/// The names a `use` brings into a module (not a glob's: an item shadows those).
fn use_names(tree: &syn::UseTree, out: &mut Vec<syn::Ident>) {
    match tree {
        syn::UseTree::Path(p) => use_names(&p.tree, out),
        syn::UseTree::Name(n) => out.push(n.ident.clone()),
        syn::UseTree::Rename(r) => out.push(r.rename.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_names(t, out)),
        syn::UseTree::Glob(_) => {}
    }
}

/// Whether `tokens` use the value `self` (not a `self::` path).
fn mentions_self(tokens: TokenStream) -> bool {
    let mut tokens = tokens.into_iter().peekable();
    while let Some(tt) = tokens.next() {
        let found = match tt {
            proc_macro2::TokenTree::Ident(ident) => {
                ident == "self"
                    && !matches!(tokens.peek(), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':')
            }
            proc_macro2::TokenTree::Group(group) => mentions_self(group.stream()),
            _ => false,
        };
        if found {
            return true;
        }
    }
    false
}
