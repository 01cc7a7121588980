//! Per-step tool permissions: the `tools` module of markers, one per step that declares
//! `tools = [...]`, each implementing `CanCall<T>` (and its seal) for exactly the tools it
//! lists, and `agent::StepTools` (and its seal): the tools offered to an agent and the dispatch of a
//! model's tool call, through the runtime's `ToolList` impl for the tuple of the step's tools; and the
//! check, before a run's first step, that the run's toolbox has every declared
//! tool.

use super::{Concat, Gen};
use proc_macro2::TokenStream;
use quote::quote;

impl Gen<'_> {
    /// `tools::Book` for a step that declares tools.
    pub(crate) fn tools_marker(&self, i: usize) -> Option<TokenStream> {
        self.wf.steps[i].tools_span?;
        let marker = self.variant(i);
        Some(quote!(tools::#marker))
    }

    /// The context type step `i` receives: `Ctx<Deps>`, or `Ctx<Deps, tools::Book>` when it
    /// declares tools.
    pub(crate) fn step_ctx_type(&self, i: usize) -> TokenStream {
        let k = self.krate;
        let deps = self.deps();
        let marker = self.tools_marker(i).map(|m| quote!(, #m));
        quote!(#k::state::Ctx<#deps #marker>)
    }

    pub(crate) fn declares_tools(&self) -> bool {
        self.wf.steps.iter().any(|s| s.tools_span.is_some())
    }
}

pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    if !g.declares_tools() {
        return TokenStream::new();
    }
    let k = g.krate;
    let wf = &g.wf.name;
    let mut markers = TokenStream::new();
    let mut impls = TokenStream::new();
    let mut requires = TokenStream::new();
    for (i, step) in g.wf.steps.iter().enumerate() {
        if step.tools_span.is_none() {
            continue;
        }
        let name = g.name(i);
        let marker = g.variant(i);
        let list = step
            .tools
            .iter()
            .map(|t| format!("`{}`", quote!(#t).to_string().replace(' ', "")))
            .collect::<Vec<_>>()
            .join(", ");
        let doc = format!(
            "The tools of step [`{name}`](super::{name}): it may call {list}, and nothing else. \
             The step takes its context as `&Ctx<…, tools::{marker}>`."
        );
        markers.concat(quote! {
            #[doc = #doc]
            #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy)]
            pub enum #marker {}
        });
        let tools = &step.tools;
        let text = |ty: &syn::Type| quote!(#ty).to_string().replace(' ', "");
        let gated: Vec<&syn::Type> = step
            .tools
            .iter()
            .filter(|t| step.approve.iter().any(|a| text(a) == text(t)))
            .collect();
        let approval = match (&step.timeout, gated.is_empty()) {
            (Some((timeout, _)), false) => {
                let tf = quote::format_ident!("__flow_approval_timeout_{}", step.name);
                let typed = super::respan(
                    quote!(let timeout: ::core::time::Duration =),
                    syn::spanned::Spanned::span(timeout),
                );
                impls.concat(quote! {
                    fn #tf() -> ::core::time::Duration {
                        #typed #timeout;
                        timeout
                    }
                });
                for tool in &gated {
                    impls.concat(quote! {
                        impl #k::tool::NeedsApproval<#tool> for tools::#marker {
                            fn timeout() -> ::core::time::Duration {
                                #tf()
                            }
                        }
                    });
                }
                Some(quote! {
                    fn approval(tool: &str) -> __flow_p::Option<::core::time::Duration> {
                        #(
                            if tool == <#gated as #k::tool::Tool>::NAME {
                                return __flow_p::Some(#tf());
                            }
                        )*
                        __flow_p::None
                    }
                })
            }
            _ => None,
        };
        impls.concat(quote! {
            impl __flow_p::DeclaredToolset for tools::#marker {
                #approval
            }
            // The bound is spelled out (under `for<'__flow>`, so it is not checked where it is
            // written) so that a listed item that is not a `Tool` is reported once, at the
            // list, not again here.
            impl #k::agent::StepTools for tools::#marker
            where
                for<'__flow> (#(#tools,)*): __flow_p::ToolList<tools::#marker>,
            {
                fn defs() -> ::std::vec::Vec<#k::model::ToolDef> {
                    <(#(#tools,)*) as __flow_p::ToolList<Self>>::defs()
                }
                fn dispatch<'a, D: ::core::marker::Send + ::core::marker::Sync>(
                    ctx: &'a #k::state::Ctx<D, Self>,
                    call: &'a #k::model::ToolCall,
                ) -> #k::agent::Dispatch<'a> {
                    <(#(#tools,)*) as __flow_p::ToolList<Self>>::dispatch(ctx, call)
                }
            }
        });
        for tool in &step.tools {
            impls.concat(quote! {
                impl __flow_p::DeclaredTool<#tool> for tools::#marker {}
            });
            if gated.iter().any(|g| text(g) == text(tool)) {
                // Never satisfied (under `for<'__flow>`, so it is checked only where it is
                // used): `ctx.call::<Gated>` fails with the message of
                // `CalledWithoutApproval`, which says how to get an approval.
                impls.concat(quote! {
                    impl #k::tool::CanCall<#tool> for tools::#marker
                    where
                        for<'__flow> #tool: __flow_p::CalledWithoutApproval<tools::#marker>,
                    {}
                });
            } else {
                impls.concat(quote! {
                    impl #k::tool::CanCall<#tool> for tools::#marker {}
                });
            }
            requires.concat(quote! {
                __flow_p::require_tool::<_, #tool>(ctx, NAME, #name)?;
            });
        }
    }
    let deps = g.deps();
    let doc = format!(
        "Which tools each step of workflow `{wf}` may call: one marker per step that declares \
         `#[step(tools = [...])]`."
    );
    quote! {
        #[doc = #doc]
        pub mod tools {
            #markers
        }
        #impls
        /// Every tool some step declares is in the run's toolbox.
        fn __flow_require_tools(ctx: &#k::state::Ctx<#deps>) -> __flow_p::Result<(), #k::error::RuntimeError> {
            #requires
            __flow_p::Ok(())
        }
    }
}
