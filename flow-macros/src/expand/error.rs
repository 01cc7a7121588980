//! `FlowError`: one variant per step holding the step's own error, and `Runtime`.

use super::Gen;
use proc_macro2::TokenStream;
use quote::quote;

/// `FlowError` with `step()`, `Display`, `Error::source` and `From<RuntimeError>`.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let wf_name = g.wf.name.to_string();

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
            pub fn step(&self) -> ::core::option::Option<&'static str> {
                match self {
                    #( Self::#err_variants(_) => ::core::option::Option::Some(#err_names), )*
                    Self::Runtime(_) => ::core::option::Option::None,
                }
            }
        }

        impl ::core::fmt::Display for FlowError {
            #[allow(unused_imports)]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                use __flow_p::{SourceNone as _, SourceViaAsRef as _, SourceViaError as _};
                use __flow_p::show::{ViaDisplay as _, ViaNothing as _};
                match self {
                    #( Self::#err_variants(e) => {
                        ::core::write!(f, "workflow `{}`: step `{}` failed", #wf_name, #err_names)?;
                        // An error that is not a `source` is shown here instead.
                        if (&&&__flow_p::ErrorRef(e)).flow_source().is_none() {
                            (&&__flow_p::show::Show(e)).flow_show(f)?;
                        }
                        ::core::result::Result::Ok(())
                    } )*
                    Self::Runtime(e) => ::core::fmt::Display::fmt(e, f),
                }
            }
        }

        impl ::std::error::Error for FlowError {
            #[allow(unused_imports)]
            fn source(&self) -> ::core::option::Option<&(dyn ::std::error::Error + 'static)> {
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
