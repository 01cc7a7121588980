//! `FlowError`: one variant per step holding the step's own error, and `Runtime`.

use super::Gen;
use proc_macro2::TokenStream;
use quote::quote;

/// `FlowError` with `step()`, `Debug`, `Display`, `Error::source` and `From<RuntimeError>`.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;

    // FlowError variants: every step.
    let err_variants: Vec<_> = (0..g.wf.steps.len()).map(|i| g.variant(i)).collect();
    let err_types: Vec<_> = (0..g.wf.steps.len()).map(|i| g.err(i)).collect();
    let err_names: Vec<_> = (0..g.wf.steps.len()).map(|i| g.name(i)).collect();
    let err_variant_strs: Vec<_> = err_variants.iter().map(ToString::to_string).collect();
    let err_docs: Vec<_> = err_names
        .iter()
        .map(|n| format!("Step `{n}` failed with its own error."))
        .collect();

    quote! {

        /// Why a run of this workflow failed: the step that failed, holding its own error, or
        /// the runtime. `Display` names the step; the step's error is the `source`.
        pub enum FlowError {
            #( #[doc = #err_docs] #err_variants(#err_types), )*
            /// The runtime failed around the steps (e.g. a checkpoint could not be stored).
            Runtime(#k::error::RuntimeError),
        }

        impl FlowError {
            /// The step that failed, or `None` for a runtime failure.
            #[must_use]
            pub fn step(&self) -> __flow_p::Option<&'static str> {
                self.__flow_failure().ok().map(|failure| failure.step)
            }

            // The one per-step match: what `step`, `Debug`, `Display` and `source` need of a
            // step's error, picked at its concrete type; or the runtime's error.
            #[allow(unused_imports)]
            fn __flow_failure(&self) -> __flow_p::Result<__flow_p::StepFailure<'_>, &#k::error::RuntimeError> {
                use __flow_p::{FailingOther as _, FailingViaAsRef as _, FailingViaDisplay as _, FailingViaError as _};
                __flow_p::Ok(match self {
                    #( Self::#err_variants(e) => (&&&&__flow_p::Failing(e)).failure(#err_variant_strs, #err_names), )*
                    Self::Runtime(e) => return __flow_p::Err(e),
                })
            }
        }

        impl ::core::fmt::Debug for FlowError {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.__flow_failure() {
                    __flow_p::Ok(failure) => failure.debug(f),
                    __flow_p::Err(e) => f.debug_tuple("Runtime").field(e).finish(),
                }
            }
        }

        impl ::core::fmt::Display for FlowError {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.__flow_failure() {
                    __flow_p::Ok(failure) => failure.display(f, NAME),
                    __flow_p::Err(e) => ::core::fmt::Display::fmt(e, f),
                }
            }
        }

        impl ::std::error::Error for FlowError {
            fn source(&self) -> __flow_p::Option<&(dyn ::std::error::Error + 'static)> {
                match self.__flow_failure() {
                    __flow_p::Ok(failure) => failure.source,
                    // Transparent: `Display` already shows the runtime error.
                    __flow_p::Err(e) => ::std::error::Error::source(e),
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
