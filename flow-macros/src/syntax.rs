//! Reading the user's types as written: their text for messages, their type arguments.
//! Shared by `parse`, `check` and the fallback expansion.

use syn::Type;

/// The type as a user writes it: `Vec<String>`, `&Ctx<Deps>`.
pub(crate) fn type_text(ty: &Type) -> String {
    quote::ToTokens::to_token_stream(ty)
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace("& ", "&")
        .replace(" :: ", "::")
}

/// The type arguments of `ty` when it is a path whose last segment is `name<…>`.
pub(crate) fn generic_args<'a>(ty: &'a Type, name: &str) -> Option<Vec<&'a Type>> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}

/// `Box<dyn Error>` as a step's error type, without `Send + Sync`: the error, and what it
/// lacks (`Send + Sync`, `Send` or `Sync`).
pub(crate) fn unsendable_box_error(output: &syn::Type) -> Option<(&syn::Type, &'static str)> {
    let error = generic_args(output, "Result")?.get(1).copied()?;
    let inner = generic_args(error, "Box")?.first().copied()?;
    let syn::Type::TraitObject(object) = inner else {
        return None;
    };
    let has = |name: &str| {
        object.bounds.iter().any(|b| {
            matches!(b, syn::TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == name))
        })
    };
    if !has("Error") {
        return None;
    }
    match (has("Send"), has("Sync")) {
        (true, true) => None,
        (false, false) => Some((error, "Send + Sync")),
        (false, true) => Some((error, "Send")),
        (true, false) => Some((error, "Sync")),
    }
}
