//! Names shared by every phase: case conversions, did-you-mean, and the names `#[workflow]`
//! generates or reserves. Depends on nothing else in the crate, so `parse` and `check` both use
//! it without depending on each other.

/// Items `#[workflow]` generates inside the module; user items must not take these names.
pub(crate) const GENERATED: &[&str] = &[
    "FlowState",
    "FlowError",
    "Workflow",
    "Loops",
    "NAME",
    "MERMAID",
    "FINGERPRINT",
];

/// The typestate API's items, besides [`GENERATED`]: not generated with
/// `#[workflow(typestate = false)]`.
pub(crate) const TYPESTATE_GENERATED: &[&str] = &["Flow", "StepFuture", "state"];

/// Step names that would clash with what `FlowState` has, without the typestate API.
pub(crate) const RESERVED_STATE_STEPS: &[(&str, &str)] = &[
    ("input", "`FlowState` variants have an `input` field"),
    ("loops", "`FlowState` variants have a `loops` field"),
];

/// Step names that would clash with what `Flow<S>` and `FlowState` already have.
pub(crate) const RESERVED_STEPS: &[(&str, &str)] = &[
    ("new", "`Flow::new` starts a run"),
    (
        "input",
        "`Flow::input` returns the next step's input, and `FlowState` variants have an `input` field",
    ),
    ("ctx", "`Flow::ctx` returns the run's context"),
    (
        "loops",
        "`Flow::loops` returns the loop counters, and `FlowState` variants have a `loops` field",
    ),
    (
        "into_state",
        "`Flow::into_state` turns a run into a `FlowState`",
    ),
];

/// Did-you-mean for a misspelled name: the closest candidate within a small edit distance.
pub(crate) fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|&(d, c)| d <= 2.max(name.len() / 3) && d < c.len().max(name.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// A route variant's name in snake case, which names its default step, its loop counter and its
/// generated functions: `BillingQuestion` (or `r#BillingQuestion`) → `billing_question`.
pub(crate) fn variant_snake(variant: &syn::Ident) -> String {
    snake_case(&syn::ext::IdentExt::unraw(variant).to_string())
}

/// `BillingQuestion` → `billing_question`.
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The identifier `name` spells, raw when it is a keyword (`return` → `r#return`); `None` when
/// no identifier is spelled so (`2fa`, `self`, an empty name). Never panics, unlike
/// `Ident::new` and `format_ident!`.
pub(crate) fn ident(name: &str, span: proc_macro2::Span) -> Option<syn::Ident> {
    // Checked before the lexer sees it: rustc's lexer reports a malformed token (`1e`) as an
    // error of its own, beside the `Err` it returns.
    if !identifier_shaped(name) {
        return None;
    }
    let mut ident = syn::parse_str::<syn::Ident>(name)
        .or_else(|_| syn::parse_str::<syn::Ident>(&format!("r#{name}")))
        .ok()?;
    ident.set_span(span);
    Some(ident)
}

/// A step's variant in `FlowState`, `FlowError` and `state` (`give_up` → `GiveUp`), or `None`
/// when that is not an identifier (`_2fa` → `2fa`, `self_` → `Self`): `check_names` reports it.
pub(crate) fn variant_of(step: &syn::Ident) -> Option<syn::Ident> {
    let pascal = pascal_case(&syn::ext::IdentExt::unraw(step).to_string());
    ident(&pascal, proc_macro2::Span::call_site()).filter(|i| !i.to_string().starts_with("r#"))
}

/// Whether `name` is made like an identifier or a keyword (`give_up`, `return`, `_x`), so that
/// the lexer reads it as one token.
fn identifier_shaped(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || unicode_ident::is_xid_start(c))
        && chars.all(unicode_ident::is_xid_continue)
}

/// `give_up` → `GiveUp`.
pub(crate) fn pascal_case(name: &str) -> String {
    name.trim_start_matches("r#")
        .split('_')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut chars = s.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}
