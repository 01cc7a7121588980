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

/// The first `impl Trait` inside `ty` (`impl AsRef<str>`, `Result<impl Display, E>`): a type
/// a checkpoint cannot name.
pub(crate) fn impl_trait(ty: &Type) -> Option<&syn::TypeImplTrait> {
    struct Find<'a>(Option<&'a syn::TypeImplTrait>);
    impl<'a> syn::visit::Visit<'a> for Find<'a> {
        fn visit_type_impl_trait(&mut self, t: &'a syn::TypeImplTrait) {
            self.0.get_or_insert(t);
        }
    }
    let mut find = Find(None);
    syn::visit::Visit::visit_type(&mut find, ty);
    find.0
}

/// The owned form of a borrowed `&T`: `String` for `str`, `PathBuf` for `Path`, `Vec<T>` for
/// `[T]`, else `T`.
pub(crate) fn owned_form(elem: &Type) -> String {
    match elem {
        Type::Path(p) if p.path.is_ident("str") => "String".to_owned(),
        Type::Path(p) if p.path.is_ident("Path") => "PathBuf".to_owned(),
        Type::Slice(s) => format!("Vec<{}>", type_text(&s.elem)),
        elem => type_text(elem),
    }
}
