//! `Loops`, `FlowState` with its hand-written serde and its borrowed twins for joins: where a
//! run is and the data it carries.

use super::{Concat, Gen};
use crate::model::Role;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// `Loops` (one counter per back-edge), `__flow_visit`, and `FlowState` with its serde,
/// `Debug` and accessors.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let serde_crate = quote!(__flow_p::serde).to_string().replace(' ', "");
    let wf_name = g.wf.name.to_string();

    // Loops: one counter per back-edge.
    let counters: Vec<_> = (0..g.graph.counters.len()).map(|c| g.counter(c)).collect();
    let counter_docs: Vec<String> = (0..g.graph.counters.len())
        .map(|c| {
            let (router, variant) = g.graph.counters[c];
            let route = g.route_enum(router);
            format!(
                "How many times `{}::{}` has been taken.",
                route.name, route.variants[variant].name
            )
        })
        .collect();

    // FlowState variants: one per step that starts a "position" (not branches).
    let mut variants = Vec::new();
    let mut variant_names = Vec::new();
    for i in 0..g.wf.steps.len() {
        let v = g.variant(i);
        let name = g.name(i);
        match &g.graph.roles[i] {
            Role::Branch { .. } => {}
            Role::Join { fork, chains, .. } => {
                let fork_out = g.out(*fork);
                let steps = g.graph.chain_steps(i);
                let fields = steps.iter().map(|&b| g.fn_ident(b));
                let outs = steps.iter().map(|&b| g.out(b));
                let doc = if chains.iter().all(|c| c.len() == 1) {
                    format!(
                        "Inside the fan-out after `{}`: branches with `Some` output have run; `{name}` runs when all have.",
                        g.name(*fork)
                    )
                } else {
                    format!(
                        "Inside the fan-out after `{}`: each branch is at the step after its last `Some` output (a step's output is kept until the next step of its branch has run); `{name}` runs when every branch's last step has run.",
                        g.name(*fork)
                    )
                };
                let kept = kept_fields(g, i);
                variants.push(quote! {
                    #[doc = #doc]
                    #v {
                        /// The fan-out step's output, while some branch still needs it.
                        input: __flow_p::Option<#fork_out>,
                        #( #[allow(missing_docs)] #fields: __flow_p::Option<#outs>, )*
                        #kept
                        /// Loop counters.
                        loops: Loops,
                    },
                });
                variant_names.push(v);
            }
            _ => {
                let input = g.inp(i);
                let doc = format!("`{name}` runs next, with this input.");
                let kept = kept_fields(g, i);
                variants.push(quote! {
                    #[doc = #doc]
                    #v {
                        /// The step's input.
                        input: #input,
                        #kept
                        /// Loop counters.
                        loops: Loops,
                    },
                });
                variant_names.push(v);
            }
        }
    }
    let output = Gen::output();
    let state_variant_idents = &variant_names;
    let state_serde = state_serde(g, &serde_crate);

    // Without back-edges, the runtime's `NoLoops`: a struct of the module's own would need
    // impls of `Clone`, `Copy`, `PartialEq`… there, each a fixed cost for every check of the crate.
    let loops = if counters.is_empty() {
        quote! {
            /// Loop counters of a run: this workflow has no back-edge, so there are none.
            pub type Loops = #k::state::NoLoops;
        }
    } else {
        quote! {
            /// Loop counters of a run: how often each back-edge has been taken.
            #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default, ::core::cmp::PartialEq, ::core::cmp::Eq, __flow_p::serde::Serialize, __flow_p::serde::Deserialize)]
            #[serde(crate = #serde_crate, default)]
            #[non_exhaustive]
            pub struct Loops {
                #( #[doc = #counter_docs] pub #counters: u32, )*
            }
        }
    };

    quote! {
        #loops

        /// Which visit of its step a run at these counters makes: their sum, which differs
        /// between any two visits of one step.
        #[inline]
        #[allow(unused_variables)]
        fn __flow_visit(loops: &Loops) -> #k::tool::Visit {
            __flow_p::visit(&[#(loops.#counters),*])
        }

        /// Where a run of this workflow is, plus the data it carries: what a checkpoint stores
        /// and what [`Workflow::resume`] continues from.
        pub enum FlowState {
            #(#variants)*
            /// The run has finished with this output.
            Completed {
                /// The exit step's output.
                output: #output,
            },
        }

        #state_serde

        // Shows where the run is, never the data: it may hold anything, credentials included.
        impl ::core::fmt::Debug for FlowState {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.step() {
                    __flow_p::Some(step) => ::core::write!(f, "FlowState({} at `{}`)", #wf_name, step),
                    __flow_p::None => ::core::write!(f, "FlowState({} completed)", #wf_name),
                }
            }
        }

        impl FlowState {
            /// The step that runs next, or `None` when the run has completed.
            #[must_use]
            pub fn step(&self) -> __flow_p::Option<&'static str> {
                __flow_p::step_at::<Workflow>(self)
            }

            /// Whether the run has completed.
            #[must_use]
            pub fn is_completed(&self) -> bool {
                ::core::matches!(self, Self::Completed { .. })
            }

            /// Loop counters, `None` when the run has completed.
            #[must_use]
            pub fn loops(&self) -> __flow_p::Option<Loops> {
                match self {
                    #( Self::#state_variant_idents { loops, .. } => __flow_p::Some(*loops), )*
                    Self::Completed { .. } => __flow_p::None,
                }
            }
        }
    }
}

/// The fields of step `i`'s variant that carry earlier outputs (`#[from]`), documented.
fn kept_fields(g: &Gen<'_>, i: usize) -> TokenStream {
    let mut out = TokenStream::new();
    for (&x, (f, t)) in super::earlier::carried(g, i).iter().zip(
        super::earlier::fields(g, i)
            .into_iter()
            .zip(super::earlier::types(g, i)),
    ) {
        let doc = format!(
            "The output of `{}`, kept while a later step reads it (`#[from({})]`).",
            g.name(x),
            g.name(x)
        );
        out.concat(quote!(#[doc = #doc] #f: #t,));
    }
    out
}

/// `Serialize` and `Deserialize` for `FlowState`, written out over generic helpers instead of
/// derived (see `__private::state_serde`). Joins, which have per-workflow field names, use
/// small derived structs.
fn state_serde(g: &Gen<'_>, serde_crate: &str) -> TokenStream {
    let h = quote!(__flow_p::state_serde);
    let serde = quote!(__flow_p::serde);
    let output = Gen::output();
    let mut names = Vec::new();
    let mut ser_arms = Vec::new();
    let mut de_arms = Vec::new();
    let mut join_structs = Vec::new();
    for (i, role) in g.graph.roles.iter().enumerate() {
        let v = g.variant(i);
        let vs = v.to_string();
        let index = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let index64 = u64::from(index);
        match role {
            Role::Branch { .. } => continue,
            Role::Join { fork, .. } => {
                let steps = g.graph.chain_steps(i);
                let fields: Vec<_> = steps.iter().map(|&b| g.fn_ident(b)).collect();
                let outs: Vec<_> = steps.iter().map(|&b| g.out(b)).collect();
                let fork_out = g.out(*fork);
                let state_ref = format_ident!("__flow_StateRef_{}", g.name(i));
                let de = format_ident!("__flow_StateDe_{}", g.name(i));
                let kf = super::earlier::fields(g, i);
                let kt = super::earlier::types(g, i);
                join_structs.push(quote! {
                    #[allow(non_camel_case_types)]
                    #[derive(#serde::Serialize)]
                    #[serde(crate = #serde_crate)]
                    struct #state_ref<'a> {
                        input: __flow_p::Option<&'a #fork_out>,
                        #( #fields: __flow_p::Option<&'a #outs>, )*
                        #( #kf: &'a #kt, )*
                        loops: &'a Loops,
                    }

                    #[allow(non_camel_case_types)]
                    #[derive(#serde::Deserialize)]
                    #[serde(crate = #serde_crate)]
                    struct #de {
                        input: __flow_p::Option<#fork_out>,
                        #( #fields: __flow_p::Option<#outs>, )*
                        #( #kf: #kt, )*
                        loops: Loops,
                    }
                });
                let locals = super::earlier::locals(g, i);
                ser_arms.push(quote! {
                    Self::#v { input, #(#fields,)* #(#kf: #locals,)* loops } => serializer.serialize_newtype_variant(
                        "FlowState", #index, #vs,
                        &#state_ref { input: input.as_ref(), #( #fields: #fields.as_ref(), )* #(#kf: #locals,)* loops },
                    ),
                });
                de_arms.push(quote! {
                    #index64 => {
                        let p: #de = #serde::de::VariantAccess::newtype_variant(variant)?;
                        __flow_p::Ok(FlowState::#v { input: p.input, #( #fields: p.#fields, )* #( #kf: p.#kf, )* loops: p.loops })
                    }
                });
            }
            Role::Entry | Role::Single if !g.graph.carry[i].is_empty() => {
                // A state that carries earlier outputs: small derived structs, like a join's.
                let input = g.inp(i);
                let state_ref = format_ident!("__flow_StateRef_{}", g.name(i));
                let de = format_ident!("__flow_StateDe_{}", g.name(i));
                let kf = super::earlier::fields(g, i);
                let kt = super::earlier::types(g, i);
                join_structs.push(quote! {
                    #[allow(non_camel_case_types)]
                    #[derive(#serde::Serialize)]
                    #[serde(crate = #serde_crate)]
                    struct #state_ref<'a> {
                        input: &'a #input,
                        #( #kf: &'a #kt, )*
                        loops: &'a Loops,
                    }
                    #[allow(non_camel_case_types)]
                    #[derive(#serde::Deserialize)]
                    #[serde(crate = #serde_crate)]
                    struct #de {
                        input: #input,
                        #( #kf: #kt, )*
                        loops: Loops,
                    }
                });
                let locals = super::earlier::locals(g, i);
                ser_arms.push(quote! {
                    Self::#v { input, #(#kf: #locals,)* loops } => serializer.serialize_newtype_variant(
                        "FlowState", #index, #vs,
                        &#state_ref { input, #(#kf: #locals,)* loops },
                    ),
                });
                de_arms.push(quote! {
                    #index64 => {
                        let p: #de = #serde::de::VariantAccess::newtype_variant(variant)?;
                        __flow_p::Ok(FlowState::#v { input: p.input, #( #kf: p.#kf, )* loops: p.loops })
                    }
                });
            }
            Role::Entry | Role::Single => {
                let input = g.inp(i);
                // Through `__private::stored`: a stored type that is not serde is reported
                // once, by `__private::stored_check`, not again here.
                ser_arms.push(quote! {
                    Self::#v { input, loops } => (&&__flow_p::stored::Pick(input)).pos(serializer, #index, #vs, loops),
                });
                de_arms.push(quote! {
                    #index64 => {
                        let (input, loops) = (&&__flow_p::stored::PickDe::<#input>::new()).pos(variant)?;
                        __flow_p::Ok(FlowState::#v { input, loops })
                    }
                });
            }
        }
        names.push(vs);
    }
    let done_index = u32::try_from(names.len()).unwrap_or(u32::MAX);
    let done_index64 = u64::from(done_index);
    names.push("Completed".to_owned());
    let expecting = format!("a `FlowState` of workflow `{}`", g.wf.name);
    quote! {
        #(#join_structs)*

        impl #serde::Serialize for FlowState {
            fn serialize<S: #serde::Serializer>(&self, serializer: S) -> __flow_p::Result<<S as #serde::Serializer>::Ok, <S as #serde::Serializer>::Error> {
                #[allow(unused_imports)]
                use __flow_p::stored::{ViaNothing as _, ViaSerde as _};
                match self {
                    #(#ser_arms)*
                    Self::Completed { output } => (&&__flow_p::stored::Pick(output)).done(serializer, #done_index),
                }
            }
        }

        impl<'de> #serde::Deserialize<'de> for FlowState {
            fn deserialize<D: #serde::Deserializer<'de>>(deserializer: D) -> __flow_p::Result<Self, <D as #serde::Deserializer<'de>>::Error> {
                const VARIANTS: &[&str] = &[#(#names),*];
                struct Visit;
                impl<'de> #serde::de::Visitor<'de> for Visit {
                    type Value = FlowState;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(#expecting)
                    }
                    fn visit_enum<A: #serde::de::EnumAccess<'de>>(self, data: A) -> __flow_p::Result<FlowState, <A as #serde::de::EnumAccess<'de>>::Error> {
                        #[allow(unused_imports)]
                        use __flow_p::stored::{DeViaNothing as _, DeViaSerde as _};
                        let (key, variant): (#h::VariantKey, A::Variant) = #serde::de::EnumAccess::variant(data)?;
                        match key.position(VARIANTS)? {
                            #(#de_arms)*
                            #done_index64 => {
                                let output: #output = (&&__flow_p::stored::PickDe::<#output>::new()).done(variant)?;
                                __flow_p::Ok(FlowState::Completed { output })
                            }
                            _ => __flow_p::Err(key.unknown(VARIANTS)),
                        }
                    }
                }
                deserializer.deserialize_enum("FlowState", VARIANTS, Visit)
            }
        }
    }
}
