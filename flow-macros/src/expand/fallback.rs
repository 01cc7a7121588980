//! The fallback expansion when checks failed: stand-ins for every generated name, typed as far
//! as the model could be read, so the user's other code adds no errors to the ones reported.

use super::{Concat, waits};
use crate::model::Workflow;
use proc_macro2::TokenStream;
use quote::quote;

/// What the expansion adds when checks failed, beside the user's items without our attributes
/// (so nothing else breaks): stand-ins for the generated names that accept anything (so code that uses
/// the workflow adds no errors of its own), and the errors.
pub(crate) fn stubs(wf: Option<&Workflow>) -> TokenStream {
    let taken = |name: &str| wf.is_some_and(|wf| wf.item_names.iter().any(|i| i == name));
    let mut stubs = TokenStream::new();
    let stand_ins = ["Workflow", "FlowState", "FlowError"];
    if let Some(wf) = wf.filter(|_| !stand_ins.iter().any(|n| taken(n))) {
        stubs.concat(stand_in_workflow(wf));
    } else {
        if !taken("Workflow") {
            stubs.concat(quote! {
                #[doc(hidden)]
                pub struct Workflow;
                impl Workflow {
                    #[doc(hidden)]
                    pub async fn run<C, I>(_: C, _: I) -> ::core::result::Result<(), FlowError> {
                        ::core::unreachable!()
                    }
                    #[doc(hidden)]
                    pub async fn resume<C, I>(_: C, _: I) -> ::core::result::Result<(), FlowError> {
                        ::core::unreachable!()
                    }
                    #[doc(hidden)]
                    pub async fn run_or_resume<C, I>(_: C, _: I) -> ::core::result::Result<(), FlowError> {
                        ::core::unreachable!()
                    }
                }
            });
        }
        if !taken("FlowState") {
            stubs.concat(quote!(
                #[doc(hidden)]
                pub enum FlowState {}
            ));
        }
        if !taken("FlowError") {
            stubs.concat(quote! {
                #[doc(hidden)]
                #[derive(::core::fmt::Debug)]
                pub enum FlowError {}
                impl ::core::fmt::Display for FlowError {
                    fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        match *self {}
                    }
                }
                impl ::std::error::Error for FlowError {}
            });
        }
    }
    // Not for a workflow whose typestate API is off: its code does not name `Flow`.
    if !taken("Flow") && wf.is_none_or(|wf| wf.typestate) {
        // One method per step the macro could read, so `flow.step().await?` chains still type-check.
        // Not for a step named like one of `Flow`'s own methods: that name is reported as
        // reserved, and a second definition would be a second error.
        // Once per name: two steps of one name are reported as a duplicate.
        let mut seen = std::collections::HashSet::new();
        let methods = wf.into_iter().flat_map(|wf| &wf.steps).filter(|step| {
            !crate::naming::RESERVED_STEPS.iter().any(|(n, _)| syn::ext::IdentExt::unraw(&step.name) == n)
                && seen.insert(&step.name)
        }).map(|step| {
            let name = &step.name;
            quote! {
                #[doc(hidden)]
                pub fn #name(self) -> ::core::future::Pending<::core::result::Result<Self, FlowError>> {
                    ::core::future::pending()
                }
            }
        });
        stubs.concat(quote! {
            #[doc(hidden)]
            #[derive(::core::fmt::Debug)]
            pub struct Flow<S = ()>(::core::marker::PhantomData<fn() -> S>);
            impl Flow {
                #[doc(hidden)]
                pub fn new<C, I>(_: C, _: I) -> Self {
                    ::core::unreachable!()
                }
            }
            impl<S> Flow<S> {
                #(#methods)*
            }
        });
    }
    // The timeouts of event waits, so that what they use is still used.
    for (i, step) in wf.into_iter().flat_map(|wf| &wf.steps).enumerate() {
        if let Some((timeout, _)) = &step.timeout {
            let f = quote::format_ident!("__flow_timeout_{}", i);
            stubs.concat(quote! {
                #[doc(hidden)]
                #[allow(dead_code, non_snake_case)]
                fn #f() { let _ = #timeout; }
            });
        }
    }
    if !taken("tools") {
        let (markers, impls) = tool_markers(wf);
        if !markers.is_empty() {
            stubs.concat(quote! {
                #[doc(hidden)]
                pub mod tools { #markers }
                #impls
            });
        }
    }
    // The routing handles hold a `Flow`: only with the typestate API.
    for route in wf
        .into_iter()
        .filter(|wf| wf.typestate)
        .flat_map(|wf| &wf.enums)
    {
        let handles = quote::format_ident!("{}Flow", route.name);
        if taken(&handles.to_string()) {
            continue;
        }
        // Each name once: a variant named like another's `…Exhausted` handle is reported.
        let mut names: Vec<String> = Vec::new();
        let variants: Vec<TokenStream> = route
            .variants
            .iter()
            .flat_map(|v| {
                let exhausted = v.max.map(|_| quote::format_ident!("{}Exhausted", v.name));
                std::iter::once(v.name.clone()).chain(exhausted)
            })
            .filter(|name| {
                let text = name.to_string();
                !names.contains(&text) && {
                    names.push(text);
                    true
                }
            })
            .map(|name| quote!(#name(Flow),))
            .collect();
        stubs.concat(quote! {
            #[doc(hidden)]
            #[derive(::core::fmt::Debug)]
            #[allow(non_camel_case_types)]
            pub enum #handles { #(#variants)* }
        });
    }
    stubs
}

/// The `tools` module's stand-in markers, one per step that declares tools (empty when none
/// does), and their impls, which name them as `tools::Marker`. Markers that may call
/// anything, so the steps' bodies add no errors of their own. When the user's module has a
/// `mod tools` of its own (reported as a clash), `pipeline::quiet_reported` puts them into it
/// ([`tool_marker_items`]).
fn tool_markers(wf: Option<&Workflow>) -> (TokenStream, TokenStream) {
    let (markers, impls): (Vec<_>, Vec<_>) = tool_marker_items(wf)
        .into_iter()
        .map(|(_, marker, impls)| (marker, impls))
        .unzip();
    (quote!(#(#markers)*), quote!(#(#impls)*))
}

/// [`tool_markers`], one step at a time: the marker's name, the marker, its impls.
pub(crate) fn tool_marker_items(
    wf: Option<&Workflow>,
) -> Vec<(proc_macro2::Ident, TokenStream, TokenStream)> {
    let k = wf.map(|wf| &wf.krate);
    let mut names: Vec<proc_macro2::Ident> = Vec::new();
    for step in wf
        .into_iter()
        .flat_map(|wf| &wf.steps)
        .filter(|s| s.tools_span.is_some())
    {
        // A step without a PascalCase name is reported; it gets no marker. A context that
        // names another marker (reported) gets that one too, so it resolves.
        for marker in crate::naming::variant_of(&step.name)
            .into_iter()
            .chain(step.ctx_marker.clone())
        {
            if !names.contains(&marker) {
                names.push(marker);
            }
        }
    }
    names
        .into_iter()
        .map(|marker| {
            (
                marker.clone(),
                quote! {
                    #[doc(hidden)]
                    #[derive(::core::fmt::Debug)]
                    pub enum #marker {}
                },
                quote! {
                    impl<T: #k::tool::Tool> #k::__private::DeclaredTool<T> for tools::#marker {}
                    impl<T: #k::tool::Tool> #k::tool::CanCall<T> for tools::#marker {}
                    impl<T: #k::tool::Tool> #k::tool::NeedsApproval<T> for tools::#marker {
                        fn timeout() -> ::core::time::Duration {
                            ::core::time::Duration::ZERO
                        }
                    }
                },
            )
        })
        .collect()
}

/// The fallback's `Workflow`, `FlowState` and `FlowError`: stand-ins that implement the
/// runtime's traits with the types the steps declare (as far as they could be read), so that
/// the user's other uses of the workflow (`Engine::register::<w::Workflow>`, `run(..).await?`)
/// add no errors to the one being reported. Their bodies never run: the crate does not compile.
fn stand_in_workflow(wf: &Workflow) -> TokenStream {
    let k = &wf.krate;
    let deps = &wf.deps;
    let name = wf.name.to_string();
    let steps = wf
        .steps
        .iter()
        .map(|s| syn::ext::IdentExt::unraw(&s.name).to_string());
    let never = quote!(::core::unreachable!(
        "internal error in flow-macros: a stand-in ran"
    ));
    let entries: Vec<_> = wf.steps.iter().filter(|s| s.entry.is_some()).collect();
    let input = match entries.as_slice() {
        [entry] if entry.generics.is_none() => entry
            .inputs
            .first()
            .map(|i| &i.ty)
            .filter(|ty| crate::syntax::impl_trait(ty).is_none()),
        _ => None,
    };
    let input = input.map_or_else(|| quote!(FlowState), |ty| quote!(#ty));
    let output = wf
        .steps
        .iter()
        .filter(|s| s.exit.is_some() && s.generics.is_none())
        .find_map(|s| {
            let ty = s.output.as_ref()?;
            crate::syntax::generic_args(ty, "Result")?
                .first()
                .copied()
                .filter(|ty| {
                    crate::syntax::impl_trait(ty).is_none()
                        && !matches!(ty, syn::Type::Reference(_))
                })
                .cloned()
        });
    let output = output.map_or_else(|| quote!(()), |ty| quote!(#ty));
    // `FlowError::Search(e)` in the user's code: one variant per step whose error type could
    // be read (a step name that clashes in PascalCase is reported and left out).
    let mut err_variants = Vec::new();
    let mut err_types = Vec::new();
    for step in &wf.steps {
        let Some(variant) = crate::naming::variant_of(&step.name) else {
            continue;
        };
        let error = step
            .output
            .as_ref()
            .and_then(|ty| crate::syntax::generic_args(ty, "Result"))
            .and_then(|args| args.get(1).copied());
        // An error type the checks found not `Send + Sync` would make this one fail too.
        let unsendable = step
            .output
            .as_ref()
            .and_then(crate::syntax::unsendable_box_error)
            .is_some();
        if let Some(error) = error
            && !unsendable
            && crate::syntax::impl_trait(error).is_none()
            && variant != "Runtime"
            && !err_variants.contains(&variant)
        {
            err_variants.push(variant);
            err_types.push(error);
        }
    }
    let mut events = Vec::new();
    for (ty, _) in wf.steps.iter().filter_map(|s| s.event.as_ref()) {
        let text = waits::event_name(ty);
        if !events.iter().any(|(t, _)| *t == text) {
            events.push((text, ty));
        }
    }
    let events = events.into_iter().map(|(text, ty)| {
        quote! {
            #[diagnostic::do_not_recommend]
            impl #k::__private::DeclaredEvent<Workflow> for #ty {}
            impl #k::state::EventOf<Workflow> for #ty {
                const NAME: &'static str = #text;
            }
        }
    });
    quote! {
        #[doc(hidden)]
        #[derive(::core::fmt::Debug)]
        pub struct Workflow;

        #[doc(hidden)]
        #[derive(::core::fmt::Debug)]
        pub enum FlowState {}

        impl #k::__private::serde::Serialize for FlowState {
            fn serialize<S: #k::__private::serde::Serializer>(&self, _: S) -> ::core::result::Result<<S as #k::__private::serde::Serializer>::Ok, <S as #k::__private::serde::Serializer>::Error> {
                match *self {}
            }
        }

        impl<'de> #k::__private::serde::Deserialize<'de> for FlowState {
            fn deserialize<D: #k::__private::serde::Deserializer<'de>>(_: D) -> ::core::result::Result<Self, <D as #k::__private::serde::Deserializer<'de>>::Error> {
                #never
            }
        }

        #[doc(hidden)]
        pub enum FlowError {
            #(#err_variants(#err_types),)*
            Runtime(#k::error::RuntimeError),
        }

        impl FlowError {
            #[doc(hidden)]
            #[must_use]
            pub fn step(&self) -> ::core::option::Option<&'static str> {
                #never
            }
        }

        impl ::core::fmt::Debug for FlowError {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name)
            }
        }

        impl ::core::fmt::Display for FlowError {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(#name)
            }
        }

        impl ::std::error::Error for FlowError {}

        impl ::core::convert::From<#k::error::RuntimeError> for FlowError {
            fn from(error: #k::error::RuntimeError) -> Self {
                Self::Runtime(error)
            }
        }

        impl #k::state::Workflow for Workflow {
            const NAME: &'static str = #name;
            const FINGERPRINT: &'static str = "";
            const MERMAID: &'static str = "";
            const STEPS: &'static [&'static str] = &[#(#steps),*];
            type Deps = #deps;
            type Input = #input;
            type Output = #output;
            type Error = FlowError;
            type State = FlowState;

            fn start(_: Self::Input) -> FlowState {
                #never
            }

            fn drive(_: &#k::state::Ctx<#deps>, state: FlowState, _: #k::__private::Resume) -> impl ::core::future::Future<Output = #k::state::Outcome<#output, FlowError>> + ::core::marker::Send {
                async move { match state {} }
            }

            fn output(state: FlowState) -> ::core::result::Result<#output, FlowState> {
                match state {}
            }

            fn failed_at(_: &FlowError) -> #k::state::FailedAt<'_> {
                #never
            }
        }

        #(#events)*

        impl Workflow {
            #[doc(hidden)]
            pub async fn run<C, I>(_: C, _: I) -> ::core::result::Result<#output, FlowError> {
                #never
            }
            #[doc(hidden)]
            pub async fn resume<C, I>(_: C, _: I) -> ::core::result::Result<#output, FlowError> {
                #never
            }
            #[doc(hidden)]
            pub async fn run_or_resume<C, I>(_: C, _: I) -> ::core::result::Result<#output, FlowError> {
                #never
            }
        }
    }
}
