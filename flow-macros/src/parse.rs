//! Tokens → [`model`](crate::model). Every value keeps its span; errors are collected, not
//! returned early, so one build reports every mistake in the module.

use crate::error::Errors;
use crate::model::{Input, Returns, RouteEnum, Step, Variant, Workflow};
use crate::naming::variant_snake;
use crate::syntax::{generic_args, type_text};
use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, Item, ItemMod, LitInt, ReturnType, Type};

pub(crate) const STEP_KEYS: &str = "`entry`, `exit`, `after = step`, `after = [step, …]`, `after = a | b`, `routes = Enum`, `workers = N`, `tools = [Tool, …]`, `approve = [Tool, …]`, `event = Type`, `timeout = Duration`";
const WORKFLOW_KEYS: &str = "`deps = Type`, `typestate = false`, `crate = path`";
const TO_KEYS: &str = "`to(step)`, `to(step, max = N, exhausted = step)`";

/// Parses `#[workflow(args)] mod … { … }`. Removes the attributes `#[workflow]` owns
/// (`#[step]`, `#[to]`) from `module`, so the module can be emitted as is even on error.
pub(crate) fn workflow(
    args: TokenStream,
    module: &mut ItemMod,
    errors: &mut Errors,
) -> Option<Workflow> {
    let mut krate: syn::Path = syn::parse_quote!(::flow_runtime);
    let mut deps: Type = syn::parse_quote!(());
    let mut typestate = true;
    let mut given: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let key = path_name(&meta.path);
        if ["crate", "deps", "typestate"].contains(&key.as_str()) {
            if given.contains(&key) {
                return Err(meta.error(format_args!(
                    "`{key}` is given twice in this `#[workflow(…)]`: write it once"
                )));
            }
            given.push(key);
        }
        if meta.path.is_ident("crate") {
            let value = meta.value()?;
            // `crate = path`, or `crate = "path"` as serde writes it.
            krate = if value.peek(syn::LitStr) {
                let lit = value.parse::<syn::LitStr>()?;
                // Checked before the lexer sees it: rustc's lexer reports a malformed token
                // (`"1e"`, `"\""`) as an error of its own, at `#[workflow]`.
                let text = lit.value();
                let segments = text.strip_prefix("::").unwrap_or(&text).split("::");
                if text.is_empty()
                    || segments.clone().any(|s| {
                        !["crate", "self", "super"].contains(&s.trim())
                            && crate::naming::ident(s.trim(), lit.span()).is_none()
                    })
                {
                    return Err(syn::Error::new(
                        lit.span(),
                        "expected a path: `crate = \"::flow_runtime\"` or `crate = ::flow_runtime`",
                    ));
                }
                lit.parse()?
            } else {
                value.parse().map_err(|e: syn::Error| {
                    syn::Error::new(e.span(), "expected a path: `crate = ::flow_runtime`")
                })?
            };
        } else if meta.path.is_ident("deps") {
            let value = meta.value().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `deps = Type`, e.g. `#[workflow(deps = AppDeps)]`",
                )
            })?;
            let ty: Type = value.parse().map_err(|e: syn::Error| {
                syn::Error::new(
                    e.span(),
                    "expected a type after `deps =`, e.g. `#[workflow(deps = AppDeps)]`",
                )
            })?;
            // Checked before it is kept, so that the fallback output does not use it.
            check_deps(&ty)?;
            deps = ty;
        } else if meta.path.is_ident("typestate") {
            let expected = "expected `typestate = false` or `typestate = true` (the default: the typestate API, `Flow` and one method per step, is generated)";
            let value = meta
                .value()
                .map_err(|e| syn::Error::new(e.span(), expected))?;
            typestate = value
                .parse::<syn::LitBool>()
                .map_err(|e| syn::Error::new(e.span(), expected))?
                .value;
        } else {
            return Err(meta.error(format_args!(
                "unknown `#[workflow]` argument `{}`; expected one of: {WORKFLOW_KEYS}",
                path_name(&meta.path)
            )));
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(args) {
        errors.push(error);
    }

    // `#[workflow] #[workflow] mod w`: the inner one would expand the outer one's output again.
    let repeated = take_attrs_if(&mut module.attrs, |a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "workflow")
    });
    for attr in repeated {
        errors.at(
            attr.path().span(),
            format_args!(
                "`#[workflow]` is given twice on `mod {}`: keep one",
                module.ident
            ),
        );
    }
    let name = module.ident.clone();
    let Some((_, items)) = &mut module.content else {
        errors.at(
            module.span(),
            "`#[workflow]` needs an inline module: write `mod name { … }` with the steps inside, not `mod name;`",
        );
        return None;
    };

    let mut steps = Vec::new();
    let mut item_names = Vec::new();
    // Parsed once, cloned onto every step.
    let unused_async: Attribute = syn::parse_quote!(#[allow(clippy::unused_async)]);
    for item in items.iter_mut() {
        if let Some(ident) = item_ident(item) {
            item_names.push(ident.clone());
        }
        if let Item::Verbatim(tokens) = item
            && let Some((attr, rest)) = bodyless_step(tokens)
        {
            errors.at(
                attr,
                "a step needs a body: `async fn name(…) -> Result<T, E> { … }`",
            );
            // Without `#[step]`, so that it is not also reported as a stray step.
            *tokens = rest;
            continue;
        }
        if let Some(attrs) = non_fn_attrs(item) {
            for attr in take_attrs(attrs, "step") {
                errors.at(
                    attr.path().span(),
                    format_args!(
                        "`#[step]` goes on an `async fn`, not on {}: write `#[step(…)] async fn name(input: T) -> Result<U, E> {{ … }}`",
                        item_kind(item)
                    ),
                );
            }
        }
        if let Item::Impl(block) = item {
            for inner in &mut block.items {
                if let syn::ImplItem::Fn(method) = inner {
                    for attr in take_attrs(&mut method.attrs, "step") {
                        errors.at(
                            attr.path().span(),
                            format_args!(
                                "steps are free functions of the workflow module, not methods: move `{}` out of this `impl` block (reach shared things through `ctx.deps()`)",
                                method.sig.ident
                            ),
                        );
                    }
                }
            }
        }
        if let Item::Mod(inner) = item {
            nested_steps(&name, inner, errors);
        }
        if let Item::Fn(function) = item {
            // `#[cfg_attr(…, step(…))]`: taken off, so that it is not also a stray step.
            let hidden = take_attrs_if(&mut function.attrs, |a| {
                a.path().is_ident("cfg_attr") && mentions_step(a)
            });
            for attr in hidden {
                errors.at(
                    attr.path().span(),
                    format_args!(
                        "`#[step]` inside `#[cfg_attr]` on `{}`: `#[workflow]` reads the graph before `cfg` is evaluated, so whether a function is a step cannot depend on it; write `#[step(…)]` itself, and put the `cfg` on the whole workflow module or branch inside the step",
                        function.sig.ident
                    ),
                );
            }
            let attrs = take_attrs(&mut function.attrs, "step");
            if !attrs.is_empty()
                && let Some(cfg) = function.attrs.iter().find(|a| a.path().is_ident("cfg"))
            {
                errors.at(
                    cfg.path().span(),
                    format_args!(
                        "`#[cfg]` on step `{}`: `#[workflow]` reads the graph before `cfg` is evaluated, so a step cannot be compiled out; put the `cfg` on the whole workflow module, or branch inside the step",
                        function.sig.ident
                    ),
                );
                // Alternatives of one step under different `cfg`s: that error is the one.
                if steps.iter().any(|s: &Step| s.name == function.sig.ident) {
                    continue;
                }
            }
            if let Some((first, rest)) = attrs.split_first() {
                for extra in rest {
                    errors.at(
                        extra.path().span(),
                        "duplicate `#[step]` attribute: merge its keys into the first one",
                    );
                }
                steps.push(step(first, &mut function.sig, errors));
                // The DSL requires `async fn` even for a step that awaits nothing.
                function.attrs.push(unused_async.clone());
            }
        }
    }

    let missing_use = missing_use_super(items, &steps, &krate).map(|(name, span)| {
        // The rest of the module then resolves, so this is the only error about it.
        items.insert(0, syn::parse_quote!(use super::*;));
        syn::Error::new(
            span,
            format_args!(
                "`{name}` is not in scope inside `mod {}`: a module does not see its parent's items; add `use super::*;` as its first line",
                module.ident
            ),
        )
    });

    // The module's own structs, enums and unions: returned as is, none is a `Result`.
    let data_types: Vec<&Ident> = items
        .iter()
        .filter_map(|item| match item {
            Item::Struct(i) => Some(&i.ident),
            Item::Enum(i) => Some(&i.ident),
            Item::Union(i) => Some(&i.ident),
            _ => None,
        })
        .collect();
    for step in &mut steps {
        step.returns = step
            .output
            .as_ref()
            .map_or(Returns::Other, |ty| returns_of(ty, &data_types));
    }

    let mut enums = Vec::new();
    let mut unrouted_enums = Vec::new();
    for item in items.iter_mut() {
        let Item::Enum(item_enum) = item else {
            continue;
        };
        let routed = steps
            .iter()
            .any(|s| s.routes.as_ref() == Some(&item_enum.ident));
        if !routed {
            unrouted_enums.push((
                item_enum.ident.clone(),
                item_enum.variants.iter().map(|v| v.ident.clone()).collect(),
            ));
        }
        let mut variants = Vec::new();
        for variant in &mut item_enum.variants {
            let to_attrs = take_attrs(&mut variant.attrs, "to");
            if !routed {
                for attr in &to_attrs {
                    errors.at(
                        attr.path().span(),
                        format_args!(
                            "`#[to]` only has a meaning on an enum a step routes with; add `routes = {}` to that step's `#[step(…)]`",
                            item_enum.ident
                        ),
                    );
                }
                continue;
            }
            let payload = match &variant.fields {
                syn::Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                    Some(fields.unnamed[0].ty.clone())
                }
                _ => None,
            };
            let mut parsed = Variant {
                name: variant.ident.clone(),
                payload,
                shape_span: if variant.fields.is_empty() {
                    variant.ident.span()
                } else {
                    variant.fields.span()
                },
                // `Return` leads to `r#return`; a name that spells no step (`Super` → `super`)
                // stays the variant's, and `check_names` says it is not a step.
                to: crate::naming::ident(&variant_snake(&variant.ident), variant.ident.span())
                    .unwrap_or_else(|| variant.ident.clone()),
                max: None,
                exhausted: None,
            };
            if let Some((first, rest)) = to_attrs.split_first() {
                for extra in rest {
                    errors.at(
                        extra.path().span(),
                        "duplicate `#[to]` attribute: a route has one target",
                    );
                }
                if let Err(error) = first
                    .parse_args_with(|input: syn::parse::ParseStream| to_args(input, &mut parsed))
                {
                    errors.push(error);
                }
            }
            variants.push(parsed);
        }
        if routed {
            enums.push(RouteEnum {
                name: item_enum.ident.clone(),
                generics: (!item_enum.generics.params.is_empty())
                    .then(|| item_enum.generics.span()),
                variants,
            });
        }
    }

    Some(Workflow {
        name,
        krate,
        deps,
        typestate,
        steps,
        enums,
        unrouted_enums,
        item_names,
        missing_use,
    })
}

/// `deps = T` names the type the context owns: not a reference (the context already hands
/// steps `&T`), and a sized type (the context stores it).
fn check_deps(deps: &Type) -> syn::Result<()> {
    let text = |ty: &Type| {
        quote::ToTokens::to_token_stream(ty)
            .to_string()
            .replace(" < ", "<")
            .replace(" >", ">")
            .replace(" ,", ",")
            .replace("& ", "&")
    };
    match deps {
        Type::Reference(syn::TypeReference { elem, .. }) => Err(syn::Error::new_spanned(
            deps,
            format_args!(
                "`deps` is the type the context owns, not a reference: write `deps = {}`; steps then take `ctx: &Ctx<{}>` (share it with `Arc` if it lives elsewhere)",
                text(elem),
                text(elem)
            ),
        )),
        Type::Slice(_) | Type::TraitObject(_) => Err(syn::Error::new_spanned(
            deps,
            format_args!(
                "`deps = {}` has no size known at compile time, and the context stores its deps by value: use an owned type, e.g. `deps = {}`",
                text(deps),
                match deps {
                    Type::Slice(s) => format!("Vec<{}>", text(&s.elem)),
                    _ => format!("Box<{}>", text(deps)),
                }
            ),
        )),
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => Err(syn::Error::new(
            deps.span(),
            "`deps = str` has no size known at compile time, and the context stores its deps by value: use an owned type, e.g. `deps = String`",
        )),
        Type::ImplTrait(_) | Type::Infer(_) => Err(syn::Error::new(
            deps.span(),
            "`deps` needs a concrete type, e.g. `#[workflow(deps = AppDeps)]`",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn item_ident(item: &Item) -> Option<&Ident> {
    match item {
        Item::Const(i) => Some(&i.ident),
        Item::Enum(i) => Some(&i.ident),
        Item::Fn(i) => Some(&i.sig.ident),
        Item::Mod(i) => Some(&i.ident),
        Item::Static(i) => Some(&i.ident),
        Item::Struct(i) => Some(&i.ident),
        Item::Trait(i) => Some(&i.ident),
        Item::Type(i) => Some(&i.ident),
        Item::Union(i) => Some(&i.ident),
        _ => None,
    }
}

/// The attributes of an item that is not a function (where `#[step]` has no meaning).
fn non_fn_attrs(item: &mut Item) -> Option<&mut Vec<Attribute>> {
    match item {
        Item::Const(i) => Some(&mut i.attrs),
        Item::Enum(i) => Some(&mut i.attrs),
        Item::Mod(i) => Some(&mut i.attrs),
        Item::Static(i) => Some(&mut i.attrs),
        Item::Struct(i) => Some(&mut i.attrs),
        Item::Trait(i) => Some(&mut i.attrs),
        Item::Type(i) => Some(&mut i.attrs),
        Item::Union(i) => Some(&mut i.attrs),
        Item::Impl(i) => Some(&mut i.attrs),
        Item::Use(i) => Some(&mut i.attrs),
        _ => None,
    }
}

/// "a struct", "an enum", … for messages.
pub(crate) fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Const(_) => "a `const`",
        Item::Enum(_) => "an enum",
        Item::Mod(_) => "a module",
        Item::Static(_) => "a `static`",
        Item::Struct(_) => "a struct",
        Item::Trait(_) => "a trait",
        Item::Type(_) => "a type alias",
        Item::Union(_) => "a union",
        Item::Impl(_) => "an `impl` block",
        Item::Use(_) => "a `use`",
        _ => "this item",
    }
}

/// Whether `#[cfg_attr(…)]` applies a `step` attribute.
fn mentions_step(attr: &Attribute) -> bool {
    let syn::Meta::List(list) = &attr.meta else {
        return false;
    };
    list.tokens
        .clone()
        .into_iter()
        .any(|tt| matches!(tt, proc_macro2::TokenTree::Ident(i) if i == "step"))
}

/// Removes and returns every attribute named `name`.
fn take_attrs(attrs: &mut Vec<Attribute>, name: &str) -> Vec<Attribute> {
    take_attrs_if(attrs, |a| a.path().is_ident(name))
}

/// Removes and returns every attribute `taken` picks, the others kept in their order.
fn take_attrs_if(attrs: &mut Vec<Attribute>, taken: impl Fn(&Attribute) -> bool) -> Vec<Attribute> {
    let (taken, kept) = std::mem::take(attrs).into_iter().partition(|a| taken(a));
    *attrs = kept;
    taken
}

fn step(attr: &Attribute, sig: &mut syn::Signature, errors: &mut Errors) -> Step {
    let from = from_attrs(sig, errors);
    let sig = &*sig;
    let mut step = Step {
        name: sig.ident.clone(),
        entry: None,
        exit: None,
        after: Vec::new(),
        after_span: None,
        converge: None,
        routes: None,
        workers: None,
        tools: Vec::new(),
        tools_span: None,
        approve: Vec::new(),
        approve_span: None,
        event: None,
        timeout: None,
        sleep: None,
        not_async: sig.asyncness.is_none().then(|| sig.fn_token.span()),
        receiver: sig.receiver().map(|receiver| receiver.self_token.span),
        generics: None,
        ctx: None,
        ctx_marker: None,
        inputs: Vec::new(),
        earlier: Vec::new(),
        output: match &sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, ty) => Some((**ty).clone()),
        },
        // Read once the module's structs and enums are known (`returns_of`).
        returns: Returns::Other,
        params_span: sig.paren_token.span.join(),
    };
    step.sleep = step.output.as_ref().and_then(sleep_of);
    if let Some(unsafety) = sig.unsafety {
        errors.at(
            unsafety.span,
            format_args!(
                "step `{}` cannot be an `unsafe fn`: the runtime calls every step the same way; make it a safe `async fn` with an `unsafe {{ … }}` block inside, where its contract is upheld",
                sig.ident
            ),
        );
    }
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        let result = attr.parse_nested_meta(|meta| step_key(&meta, &mut step));
        if let Err(error) = result {
            errors.push(error);
        }
    }

    let all: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let mut typed = Vec::with_capacity(all.len());
    for (param, from) in all.into_iter().zip(from) {
        if let Some(from) = from {
            earlier(&mut step, param, from, errors);
            continue;
        }
        if let Some(last) = step.earlier.last() {
            errors.at(
                param.pat.span(),
                format_args!(
                    "parameter `{}` of step `{}` must come before the `#[from({})]` parameter `{}`: a step takes its context, then its input, then the earlier outputs it reads",
                    quote::ToTokens::to_token_stream(&param.pat),
                    step.name,
                    last.from,
                    last.pat,
                ),
            );
        }
        typed.push(param);
    }
    let count = typed.len();
    let mut params = typed.iter().map(|t| &*t.ty);
    let mut first = params.next();
    match first {
        // `&mut T` or a lone `&T` that is not a `Ctx` is data taken by reference, not the
        // context: reported as such in `check_signatures`.
        Some(Type::Reference(r)) if !is_ctx(&r.elem) && (r.mutability.is_some() || count == 1) => {}
        Some(Type::Reference(r)) => {
            if let Some(m) = r.mutability {
                errors.at(
                    m.span(),
                    format_args!(
                        "step `{}` takes its context as `&mut`; take it as a shared reference: `ctx: &Ctx<…>`",
                        step.name
                    ),
                );
            } else if let Some(l) = r.lifetime.as_ref().filter(|l| l.ident == "static") {
                errors.at(
                    l.span(),
                    format_args!(
                        "step `{}` takes its context as `&'static`, but a step borrows the context only while it runs; write `ctx: &{}`",
                        step.name,
                        crate::syntax::type_text(&r.elem)
                    ),
                );
            }
            step.ctx = first.cloned();
            step.ctx_marker = ctx_marker(&r.elem);
            first = None;
        }
        Some(ty) if is_ctx(ty) => {
            errors.at(
                ty.span(),
                format_args!(
                    "step `{}` takes its context by value; take it by reference: `ctx: &{}`",
                    step.name,
                    quote::ToTokens::to_token_stream(ty)
                        .to_string()
                        .replace(' ', "")
                ),
            );
            first = None;
        }
        _ => {}
    }
    for ty in first.into_iter().chain(params) {
        if let Type::Reference(r) = ty
            && is_ctx(&r.elem)
        {
            errors.at(
                ty.span(),
                format_args!(
                    "the context must be the first parameter of step `{}`: move it before the data parameter",
                    step.name
                ),
            );
            continue;
        }
        let pat = typed
            .iter()
            .find(|t| std::ptr::eq(t.ty.as_ref(), ty))
            .map_or_else(
                || "input".to_owned(),
                |t| quote::ToTokens::to_token_stream(&t.pat).to_string(),
            );
        let by_value = match ty {
            Type::Reference(r) => Some(format!("{pat}: {}", crate::syntax::owned_form(&r.elem))),
            _ => None,
        };
        step.inputs.push(Input {
            pat,
            ty: ty.clone(),
            reference: by_value,
        });
    }
    step.generics = generics(sig, &mut step);
    step
}

/// Removes `#[from(step)]` from each parameter of `sig` and returns, per typed parameter, the
/// step it names (reporting any other form).
fn from_attrs(sig: &mut syn::Signature, errors: &mut Errors) -> Vec<Option<Ident>> {
    let mut out = Vec::new();
    for arg in &mut sig.inputs {
        match arg {
            FnArg::Typed(typed) => {
                for cfg in typed
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                {
                    errors.at(
                        cfg.path().span(),
                        format_args!(
                            "`#[{}]` on a parameter of step `{}`: the runtime passes every parameter the step declares; give the step one signature, and branch inside it",
                            path_name(cfg.path()),
                            sig.ident
                        ),
                    );
                }
                let attrs = take_attrs(&mut typed.attrs, "from");
                let mut from = None;
                for attr in &attrs {
                    if from.is_some() {
                        errors.at(
                            attr.path().span(),
                            "duplicate `#[from]` attribute: a parameter holds one step's output",
                        );
                        continue;
                    }
                    match attr.parse_args::<Ident>() {
                        Ok(name) => from = Some(name),
                        Err(_) => errors.at(
                            attr.span(),
                            "expected the name of an earlier step: `#[from(step)] name: &T`",
                        ),
                    }
                }
                out.push(from);
            }
            FnArg::Receiver(receiver) => {
                for attr in take_attrs(&mut receiver.attrs, "from") {
                    errors.at(
                        attr.path().span(),
                        "`#[from(step)]` goes on a data parameter: `#[from(step)] name: &T`",
                    );
                }
            }
        }
    }
    out
}

/// A `#[from(step)]` parameter: kept in `step.earlier` when it is a shared reference.
fn earlier(step: &mut Step, param: &syn::PatType, from: Ident, errors: &mut Errors) {
    let pat = quote::ToTokens::to_token_stream(&param.pat).to_string();
    match &*param.ty {
        Type::Reference(r) if r.mutability.is_none() => step.earlier.push(crate::model::Earlier {
            from,
            pat,
            ty: (*r.elem).clone(),
        }),
        Type::Reference(r) => errors.at(
            param.ty.span(),
            format_args!(
                "`#[from({from})]` gives step `{}` a shared reference to `{from}`'s output: write `{pat}: &{}`, without `mut`",
                step.name,
                type_text(&r.elem)
            ),
        ),
        ty => errors.at(
            ty.span(),
            format_args!(
                "`#[from({from})]` gives step `{}` a reference to `{from}`'s output, which the run keeps for the steps after: write `{pat}: &{}`",
                step.name,
                type_text(ty)
            ),
        ),
    }
}

/// What is wrong with a step's generics, if anything. Lifetimes that only the context's type
/// uses (`ctx: &'c Ctx`) are accepted: the context's type is kept with `'_` in their place.
fn generics(sig: &syn::Signature, step: &mut Step) -> Option<(Span, crate::model::Generics)> {
    use crate::model::Generics;
    let params = &sig.generics.params;
    if params.is_empty() && sig.generics.where_clause.is_none() {
        return None;
    }
    let span = sig.generics.span();
    let mentions = |ty: &Type, name: &str| {
        quote::ToTokens::to_token_stream(ty)
            .into_iter()
            .flat_map(flatten)
            .any(|t| t == name)
    };
    let types: Vec<&Ident> = params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(&t.ident),
            syn::GenericParam::Const(c) => Some(&c.ident),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    if let Some(first) = types.first() {
        let over_ctx = types.iter().find(|t| {
            step.ctx
                .as_ref()
                .is_some_and(|ctx| mentions(ctx, &t.to_string()))
        });
        return Some(match over_ctx {
            Some(param) => (
                param.span(),
                Generics::Types {
                    over_ctx: Some(param.to_string()),
                },
            ),
            None => (first.span(), Generics::Types { over_ctx: None }),
        });
    }
    let borrowed = params.iter().find_map(|p| match p {
        syn::GenericParam::Lifetime(l)
            if step
                .inputs
                .iter()
                .any(|i| mentions(&i.ty, &l.lifetime.ident.to_string()))
                || step
                    .output
                    .as_ref()
                    .is_some_and(|o| mentions(o, &l.lifetime.ident.to_string())) =>
        {
            Some(&l.lifetime)
        }
        _ => None,
    });
    if let Some(l) = borrowed {
        return Some((l.span(), Generics::BorrowedData(l.to_string())));
    }
    // A `where` clause alone: pointed at, since generics without `<…>` have no span of their own.
    if let Some(clause) = &sig.generics.where_clause
        && params.is_empty()
    {
        return Some((clause.where_token.span, Generics::Types { over_ctx: None }));
    }
    if sig.generics.where_clause.is_some()
        || params
            .iter()
            .any(|p| matches!(p, syn::GenericParam::Lifetime(l) if !l.bounds.is_empty()))
    {
        return Some((span, Generics::Types { over_ctx: None }));
    }
    if let Some(ctx) = &mut step.ctx {
        struct Elide;
        impl syn::visit_mut::VisitMut for Elide {
            fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
                if l.ident != "static" {
                    l.ident = Ident::new("_", l.ident.span());
                }
            }
        }
        syn::visit_mut::VisitMut::visit_type_mut(&mut Elide, ctx);
    }
    None
}

/// The identifiers in a token tree, as strings (`'a` gives `a`).
fn flatten(tree: proc_macro2::TokenTree) -> Vec<String> {
    match tree {
        proc_macro2::TokenTree::Group(g) => g.stream().into_iter().flat_map(flatten).collect(),
        proc_macro2::TokenTree::Ident(i) => vec![i.to_string()],
        _ => Vec::new(),
    }
}

fn step_key(meta: &ParseNestedMeta<'_>, step: &mut Step) -> syn::Result<()> {
    let path = &meta.path;
    let given = match path.get_ident().map(ToString::to_string).as_deref() {
        Some("entry") => step.entry.is_some(),
        Some("exit") => step.exit.is_some(),
        Some("after") => step.after_span.is_some(),
        Some("routes") => step.routes.is_some(),
        Some("workers") => step.workers.is_some(),
        Some("tools") => step.tools_span.is_some(),
        Some("approve") => step.approve_span.is_some(),
        Some("event") => step.event.is_some(),
        Some("timeout") => step.timeout.is_some(),
        _ => false,
    };
    if given {
        return Err(meta.error(format_args!(
            "`{}` is given twice in this `#[step(…)]`: write it once",
            path_name(path)
        )));
    }
    if path.is_ident("entry") {
        step.entry = Some(path.span());
    } else if path.is_ident("exit") {
        step.exit = Some(path.span());
    } else if path.is_ident("after") {
        let value = meta.value()?;
        step.after_span = Some(path.span());
        if value.peek(syn::token::Bracket) {
            let content;
            syn::bracketed!(content in value);
            let names = content.parse_terminated(Ident::parse, syn::Token![,])?;
            if names.is_empty() {
                return Err(syn::Error::new(
                    content.span(),
                    "`after = []` names no step: write `after = step`, or `after = [a, b]` to join branches",
                ));
            }
            step.after = names.into_iter().collect();
        } else {
            let expected = |e: syn::Error| {
                syn::Error::new(
                    e.span(),
                    "expected a step name: `after = step`, `after = [a, b]` (a join) or `after = a | b` (after whichever ran)",
                )
            };
            step.after = vec![value.parse::<Ident>().map_err(expected)?];
            while value.peek(syn::Token![|]) {
                let bar: syn::Token![|] = value.parse()?;
                step.converge.get_or_insert(bar.span);
                step.after.push(value.parse::<Ident>().map_err(expected)?);
            }
        }
    } else if path.is_ident("routes") {
        step.routes = Some(meta.value()?.parse().map_err(|e: syn::Error| {
            syn::Error::new(
                e.span(),
                "expected the name of an enum in this module: `routes = Enum`",
            )
        })?);
    } else if path.is_ident("workers") {
        let lit: LitInt = meta.value()?.parse().map_err(|e: syn::Error| {
            syn::Error::new(
                e.span(),
                "expected the most workers that may run at once: `workers = 4`",
            )
        })?;
        let n: usize = lit.base10_parse()?;
        if n == 0 {
            return Err(syn::Error::new(
                lit.span(),
                "`workers = 0` would never run: use 1 or more",
            ));
        }
        step.workers = Some((n, lit.span()));
    } else if path.is_ident("event") {
        let ty: Type = meta.value()?.parse().map_err(|e: syn::Error| {
            syn::Error::new(
                e.span(),
                "expected the type of the event the step waits for: `event = Approval`",
            )
        })?;
        step.event = Some((ty, path.span()));
    } else if path.is_ident("timeout") {
        let expr: syn::Expr = meta.value()?.parse().map_err(|e: syn::Error| {
            syn::Error::new(
                e.span(),
                "expected how long to wait for the event, a `Duration`: `timeout = Duration::from_secs(3600)`",
            )
        })?;
        if let syn::Expr::Lit(lit) = &expr {
            return Err(syn::Error::new(
                lit.span(),
                format_args!(
                    "`timeout` is a `std::time::Duration`, not a {}: write `timeout = {}`",
                    match &lit.lit {
                        syn::Lit::Str(_) => "string",
                        _ => "number",
                    },
                    duration_hint(&lit.lit)
                ),
            ));
        }
        step.timeout = Some((expr, path.span()));
    } else if path.is_ident("tools") {
        step.tools_span = Some(path.span());
        step.tools = tools(meta.value()?, "tools")?;
    } else if path.is_ident("approve") {
        step.approve_span = Some(path.span());
        step.approve = tools(meta.value()?, "approve")?;
    } else {
        let name = path_name(path);
        let hint = crate::naming::did_you_mean(
            &name,
            [
                "entry", "exit", "after", "routes", "workers", "tools", "approve", "event",
                "timeout",
            ],
        )
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
        return Err(meta.error(format_args!(
            "unknown `#[step]` key `{name}`{hint}; expected one of: {STEP_KEYS}"
        )));
    }
    Ok(())
}

/// `Duration::from_secs(…)` for a literal a user wrote as a timeout: `3600`, `"24h"`, `"30m"`.
fn duration_hint(lit: &syn::Lit) -> String {
    let secs = match lit {
        syn::Lit::Int(n) => n.base10_parse::<u64>().ok(),
        syn::Lit::Str(s) => {
            let text = s.value();
            let text = text.trim();
            let split = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            let (number, unit) = text.split_at(split);
            let unit = match unit.trim() {
                "" | "s" | "sec" | "secs" | "seconds" => Some(1),
                "m" | "min" | "mins" | "minutes" => Some(60),
                "h" | "hour" | "hours" => Some(3600),
                "d" | "day" | "days" => Some(86_400),
                _ => None,
            };
            number
                .parse::<u64>()
                .ok()
                .zip(unit)
                .and_then(|(n, u)| n.checked_mul(u))
        }
        _ => None,
    };
    match secs {
        Some(secs) => format!("Duration::from_secs({secs})"),
        None => "Duration::from_secs(3600)".to_owned(),
    }
}

/// How a return type gives the step's output and error, as written: see [`Returns`].
fn returns_of(ty: &Type, data_types: &[&Ident]) -> Returns {
    // Generic types of std and of the runtime that are never an alias of `Result`.
    const NOT_RESULT: &[&str] = &[
        "Option",
        "Vec",
        "Box",
        "Arc",
        "Rc",
        "Cell",
        "RefCell",
        "Mutex",
        "RwLock",
        "Pin",
        "PhantomData",
        "HashSet",
        "BTreeSet",
        "VecDeque",
        "BinaryHeap",
        "LinkedList",
        "Sleep",
        "Valid",
        "Event",
        "LoopExhausted",
        "Ctx",
    ];
    let path = match ty {
        Type::Group(g) => return returns_of(&g.elem, data_types),
        Type::Paren(p) => return returns_of(&p.elem, data_types),
        Type::Path(p) if p.qself.is_none() => &p.path,
        _ => return Returns::Other,
    };
    let Some(last) = path.segments.last() else {
        return Returns::Other;
    };
    let args: Vec<&syn::GenericArgument> = match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        _ => Vec::new(),
    };
    let types: Vec<&Type> = args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    if last.ident == "Result" {
        return match (types.as_slice(), args.len()) {
            ([ok, err], 2) => Returns::Result {
                ok: Box::new((*ok).clone()),
                err: Box::new((*err).clone()),
            },
            _ => Returns::Alias,
        };
    }
    let name = last.ident.to_string();
    if types.len() == 1
        && args.len() == 1
        && !NOT_RESULT.contains(&name.as_str())
        && !(path.segments.len() == 1 && data_types.contains(&&last.ident))
    {
        Returns::Alias
    } else {
        Returns::Other
    }
}

/// `T` when `ty` is `Result<Sleep<T>, E>` as written.
fn sleep_of(ty: &Type) -> Option<Type> {
    let ok = generic_args(ty, "Result")?.into_iter().next()?;
    generic_args(ok, "Sleep")?.into_iter().next().cloned()
}

/// `[A, B]` after `tools =` (or `approve =`, named by `key`): a non-empty list of distinct
/// tool types.
fn tools(value: syn::parse::ParseStream<'_>, key: &str) -> syn::Result<Vec<Type>> {
    let expected = if key == "approve" {
        "expected a list of the tools whose calls need a person's approval: `approve = [Refund]`"
    } else {
        "expected a list of the tool types this step may call: `tools = [Search, Book]`"
    };
    if !value.peek(syn::token::Bracket) {
        return Err(syn::Error::new(value.span(), expected));
    }
    let content;
    syn::bracketed!(content in value);
    let types = content
        .parse_terminated(Type::parse, syn::Token![,])
        .map_err(|e| syn::Error::new(e.span(), expected))?;
    if types.is_empty() {
        return Err(syn::Error::new(
            content.span(),
            if key == "approve" {
                "`approve = []` gates no tool: list the tools whose calls need approval, or remove `approve`"
            } else {
                "`tools = []` declares no tool: list the tools the step calls, or remove `tools`"
            },
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for ty in &types {
        let text = quote::ToTokens::to_token_stream(ty)
            .to_string()
            .replace(' ', "");
        if seen.contains(&text) {
            return Err(syn::Error::new(
                ty.span(),
                format_args!("tool `{text}` is listed twice: list each tool once"),
            ));
        }
        seen.push(text);
    }
    Ok(types.into_iter().collect())
}

use syn::parse::Parse;

fn to_args(input: syn::parse::ParseStream<'_>, variant: &mut Variant) -> syn::Result<()> {
    variant.to = input.parse().map_err(|e: syn::Error| {
        syn::Error::new(
            e.span(),
            format!("expected the target step's name; forms: {TO_KEYS}"),
        )
    })?;
    while !input.is_empty() {
        input.parse::<syn::Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key: Ident = input.parse()?;
        if (key == "max" && variant.max.is_some())
            || (key == "exhausted" && variant.exhausted.is_some())
        {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key}` is given twice in this `#[to(…)]`: write it once"),
            ));
        }
        input.parse::<syn::Token![=]>()?;
        if key == "max" {
            let lit: LitInt = input.parse()?;
            let n: u32 = lit.base10_parse()?;
            if n == 0 {
                return Err(syn::Error::new(
                    lit.span(),
                    "`max = 0` would never take this route: use 1 or more",
                ));
            }
            variant.max = Some((n, lit.span()));
        } else if key == "exhausted" {
            variant.exhausted = Some(input.parse()?);
        } else {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown `#[to]` key `{key}`; expected one of: `max = N`, `exhausted = step`"
                ),
            ));
        }
    }
    Ok(())
}

fn path_name(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// A body-less function with `#[step]` (`async fn f();`) parses as verbatim tokens; returns the
/// span of its `#[step]` and the tokens without it.
fn bodyless_step(tokens: &TokenStream) -> Option<(Span, TokenStream)> {
    struct Attrs(Vec<Attribute>, TokenStream);
    impl syn::parse::Parse for Attrs {
        fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
            let attrs = input.call(Attribute::parse_outer)?;
            Ok(Self(attrs, input.parse()?))
        }
    }
    let Attrs(attrs, rest) = syn::parse2(tokens.clone()).ok()?;
    let span = attrs
        .iter()
        .find(|a| a.path().is_ident("step"))?
        .path()
        .span();
    let kept = attrs.iter().filter(|a| !a.path().is_ident("step"));
    // A stand-in body in place of the `;`, so that rustc does not report the missing body a
    // second time (the crate does not compile: the error above is reported).
    // Only for an `async fn`: another fn's `impl Future` return cannot be `!`.
    let mut rest: Vec<_> = rest.into_iter().collect();
    let is_async = rest
        .iter()
        .any(|tt| matches!(tt, proc_macro2::TokenTree::Ident(i) if i == "async"));
    if is_async
        && matches!(rest.last(), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ';')
    {
        rest.pop();
        rest.push(proc_macro2::TokenTree::Group(proc_macro2::Group::new(
            proc_macro2::Delimiter::Brace,
            quote::quote!(::core::unimplemented!()),
        )));
    }
    Some((
        span,
        quote::quote!(#(#kept)* #[allow(unused_variables)] #(#rest)*),
    ))
}

/// A name the steps' signatures use that nothing in a module without any `use` defines
/// (`Ctx`, or a type of the parent module): the module most likely lacks `use super::*;`.
fn missing_use_super(items: &[Item], steps: &[Step], krate: &syn::Path) -> Option<(String, Span)> {
    // What a module sees without any `use`: the std prelude's types and the primitive ones.
    const PRELUDE: &[&str] = &[
        "String", "Vec", "Option", "Result", "Box", "bool", "char", "str", "u8", "u16", "u32",
        "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
    ];
    // A glob import or a macro may bring any name: nothing can be said then, except for the
    // runtime's prelude, whose names are known.
    let mut globs = Vec::new();
    for item in items {
        match item {
            Item::Use(u) => globs_of(&u.tree, &mut Vec::new(), &mut globs),
            Item::Macro(_) => return None,
            _ => {}
        }
    }
    let runtime = krate
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>();
    let is_prelude = |glob: &Vec<String>| {
        glob.split_last().is_some_and(|(last, path)| {
            last == "prelude" && (path == runtime.as_slice() || path == ["flow_runtime"])
        })
    };
    if !globs.iter().all(is_prelude) {
        return None;
    }
    let mut defined: Vec<String> = items
        .iter()
        .filter_map(item_ident)
        .map(ToString::to_string)
        .collect();
    if !globs.is_empty() {
        defined.extend(RUNTIME_PRELUDE.iter().map(|&n| n.to_owned()));
    }
    for item in items {
        match item {
            Item::Use(u) => imported(&u.tree, &mut defined),
            Item::ExternCrate(c) => {
                defined.push(c.rename.as_ref().map_or(&c.ident, |(_, r)| r).to_string());
            }
            _ => {}
        }
    }
    let mut found = None;
    let mut visit = |ty: &Type| {
        struct Names<'a>(&'a mut Vec<(String, Span)>);
        impl<'ast> syn::visit::Visit<'ast> for Names<'_> {
            fn visit_type_path(&mut self, p: &'ast syn::TypePath) {
                // Only a bare name: `crate::Trip` or `serde_json::Value` may resolve.
                if p.qself.is_none() && p.path.leading_colon.is_none() && p.path.segments.len() == 1
                {
                    let name = &p.path.segments[0].ident;
                    self.0.push((name.to_string(), name.span()));
                }
                syn::visit::visit_type_path(self, p);
            }
        }
        let mut names = Vec::new();
        syn::visit::Visit::visit_type(&mut Names(&mut names), ty);
        if found.is_none() {
            found = names.into_iter().find(|(n, _)| {
                !PRELUDE.contains(&n.as_str()) && !defined.contains(n) && n != "Self"
            });
        }
    };
    for step in steps {
        step.ctx.iter().for_each(&mut visit);
        step.inputs.iter().for_each(|i| visit(&i.ty));
        step.output.iter().for_each(&mut visit);
    }
    found
}

/// `#[step]` on a function of a module inside the workflow's: reported once here (and taken off,
/// so that it is not also a stray step), since a step is an item of the workflow module itself.
fn nested_steps(workflow: &Ident, module: &mut ItemMod, errors: &mut Errors) {
    let Some((_, items)) = &mut module.content else {
        return;
    };
    for item in items.iter_mut() {
        match item {
            Item::Fn(function) => {
                for attr in take_attrs(&mut function.attrs, "step") {
                    errors.at(
                        attr.path().span(),
                        format_args!(
                            "step `{}` is inside `mod {}`: steps are items of the `#[workflow]` module itself; move it into `mod {workflow}`",
                            function.sig.ident, module.ident
                        ),
                    );
                }
            }
            Item::Mod(inner) => nested_steps(workflow, inner, errors),
            _ => {}
        }
    }
}

/// The names `use flow_runtime::prelude::*` brings into a module (`flow-runtime/src/prelude.rs`;
/// a unit test keeps the two the same).
const RUNTIME_PRELUDE: &[&str] = &[
    "RuntimeError",
    "Invalid",
    "Valid",
    "Ctx",
    "Event",
    "LoopExhausted",
    "RunId",
    "Sleep",
    "Workflow",
    "MemoryStore",
    "Store",
    "Auth",
    "CallError",
    "Credential",
    "IdempotencyKey",
    "PolicyTool",
    "RateLimit",
    "Retry",
    "Tool",
    "ToolCtx",
    "ToolError",
    "ToolPolicy",
    "Toolbox",
    "step",
    "workflow",
    "JsonSchema",
    "schemars",
];

/// The paths of the globs a `use` tree imports (`use a::*` gives `a`; `use a::{b, c::*}`
/// gives `a::c`), each as its segments; `prefix` is the path read so far.
fn globs_of(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            globs_of(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| globs_of(t, prefix, out)),
        syn::UseTree::Name(_) | syn::UseTree::Rename(_) => {}
    }
}

/// The names a `use` tree without globs brings into scope.
fn imported(tree: &syn::UseTree, names: &mut Vec<String>) {
    match tree {
        syn::UseTree::Path(p) => imported(&p.tree, names),
        syn::UseTree::Name(n) => names.push(n.ident.to_string()),
        syn::UseTree::Rename(r) => names.push(r.rename.to_string()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| imported(t, names)),
        syn::UseTree::Glob(_) => {}
    }
}

/// `X` in a context type `Ctx<D, tools::X>` as written.
fn ctx_marker(ctx: &Type) -> Option<Ident> {
    let marker = generic_args(ctx, "Ctx")?.get(1).copied()?;
    let Type::Path(p) = marker else { return None };
    match p.path.segments.iter().collect::<Vec<_>>().as_slice() {
        [module, marker] if p.qself.is_none() && module.ident == "tools" => {
            Some(marker.ident.clone())
        }
        _ => None,
    }
}

/// Whether `ty` is a path ending in `Ctx` (the runtime's context type).
fn is_ctx(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Ctx"))
}

/// `#[step]` outside a `#[workflow]` module. Each `#[step]` expands on its own and sees only its
/// function, so a module of several steps without `#[workflow]` reports this once per step;
/// each says the one fix.
pub(crate) fn stray_step(item: &TokenStream) -> TokenStream {
    let message = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(_)) | Err(_) => {
            "`#[step]` outside a `#[workflow]` module: add `#[workflow]` to the module that holds this function (`#[workflow] mod name { … }`)".to_owned()
        }
        Ok(other) => format!(
            "`#[step]` goes on an `async fn` inside a `#[workflow]` module, not on {}: write `#[step(…)] async fn name(input: T) -> Result<U, E> {{ … }}`",
            item_kind(&other)
        ),
    };
    // A method in an `impl` block parses as an `ImplItemFn`, not an `Item`; with `self` it
    // cannot be a free function.
    let message = match syn::parse2::<syn::ImplItemFn>(item.clone()) {
        Ok(method) if method.sig.receiver().is_some() => format!(
            "steps are free functions in a `#[workflow]` module, not methods: move `{}` out of the `impl` block, without `self` (reach shared things through `ctx.deps()`)",
            method.sig.ident
        ),
        _ => message,
    };
    let error = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote::quote!(#error #item)
}

#[cfg(test)]
mod tests {
    /// `RUNTIME_PRELUDE` names what the runtime's prelude exports: a name missing here would
    /// make the `use super::*;` hint refuse a module that compiles.
    #[test]
    fn runtime_prelude_names_are_the_preludes() {
        let file: syn::File =
            syn::parse_str(include_str!("../../flow-runtime/src/prelude.rs")).unwrap();
        let mut names = Vec::new();
        for item in &file.items {
            if let syn::Item::Use(u) = item {
                let mut globs = Vec::new();
                super::globs_of(&u.tree, &mut Vec::new(), &mut globs);
                assert!(globs.is_empty(), "the prelude re-exports a glob: {globs:?}");
                super::imported(&u.tree, &mut names);
            }
        }
        let mut expected: Vec<&str> = super::RUNTIME_PRELUDE.to_vec();
        expected.sort_unstable();
        names.sort_unstable();
        assert_eq!(names, expected);
    }
}
