//! `FlowError`: one variant per step holding the step's own error, and `Runtime`.

use super::Gen;
use proc_macro2::TokenStream;
use quote::quote;

/// `FlowError` with `step()`, `Display`, `Error::source` and `From<RuntimeError>`.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;

    // FlowError variants: every step.
    let err_variants: Vec<_> = (0..g.wf.steps.len()).map(|i| g.variant(i)).collect();
    let err_types: Vec<_> = (0..g.wf.steps.len()).map(|i| g.err(i)).collect();
    let err_names: Vec<_> = (0..g.wf.steps.len()).map(|i| g.name(i)).collect();
    let err_docs: Vec<_> = err_names
        .iter()
        .map(|n| format!("Step `{n}` failed with its own error."))
        .collect();

    quote! {

        /// Why a run of this workflow failed: the step that failed, holding its own error, or
        /// the runtime. `Display` names the step; the step's error is the `source`.
        #[derive(::core::fmt::Debug)]
        pub enum FlowError {
            #( #[doc = #err_docs] #err_variants(#err_types), )*
            /// The runtime failed around the steps (e.g. a checkpoint could not be stored).
            Runtime(#k::error::RuntimeError),
        }

        impl FlowError {
            /// The step that failed, or `None` for a runtime failure.
            #[must_use]
            pub fn step(&self) -> __flow_p::Option<&'static str> {
                match self {
                    #( Self::#err_variants(_) => __flow_p::Some(#err_names), )*
                    Self::Runtime(_) => __flow_p::None,
                }
            }
        }

        impl ::core::fmt::Display for FlowError {
            #[allow(unused_imports)]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                use __flow_p::{SourceNone as _, SourceViaAsRef as _, SourceViaError as _};
                use __flow_p::show::{ViaDisplay as _, ViaNothing as _};
                match self {
                    // An error that is not a `source` is shown here instead.
                    #( Self::#err_variants(e) => __flow_p::show::step_failed(
                        f, NAME, #err_names,
                        (&&&__flow_p::ErrorRef(e)).flow_source(),
                        (&&__flow_p::show::Show(e)).shown(),
                    ), )*
                    Self::Runtime(e) => ::core::fmt::Display::fmt(e, f),
                }
            }
        }

        impl ::std::error::Error for FlowError {
            #[allow(unused_imports)]
            fn source(&self) -> __flow_p::Option<&(dyn ::std::error::Error + 'static)> {
                use __flow_p::{SourceNone as _, SourceViaAsRef as _, SourceViaError as _};
                match self {
                    #( Self::#err_variants(e) => (&&&__flow_p::ErrorRef(e)).flow_source(), )*
                    // Transparent: `Display` already shows the runtime error.
                    Self::Runtime(e) => ::std::error::Error::source(e),
                }
            }
        }

        impl ::core::convert::From<#k::error::RuntimeError> for FlowError {
            fn from(e: #k::error::RuntimeError) -> Self {
                Self::Runtime(e)
            }
        }

    }
}
