//! `FlowState`, `FlowError`, `Loops`, the per-step `exec` functions and `resume`, which
//! drives a run through the graph from any state.

use super::Ctx;
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;

pub(crate) fn generate(cx: &Ctx<'_>) -> TokenStream {
    let k = cx.krate;
    let serde_crate = quote!(#k::__private::serde).to_string().replace(' ', "");
    let wf_name = cx.wf.name.to_string();

    // Loops: one counter per back-edge.
    let counters: Vec<_> = (0..cx.graph.counters.len())
        .map(|c| cx.counter(c))
        .collect();
    let counter_docs: Vec<String> = (0..cx.graph.counters.len())
        .map(|c| {
            let (router, variant) = cx.graph.counters[c];
            let route = cx.route_enum(router);
            format!(
                "How many times `{}::{}` has been taken.",
                route.name, route.variants[variant].name
            )
        })
        .collect();

    // FlowState variants: one per step that starts a "position" (not branches).
    let mut variants = Vec::new();
    let mut variant_names = Vec::new();
    for i in 0..cx.wf.steps.len() {
        let v = cx.variant(i);
        let name = cx.name(i);
        match &cx.graph.roles[i] {
            Role::Branch { .. } => {}
            Role::Join { fork, branches } => {
                let fork_out = cx.out(*fork);
                let fields = branches.iter().map(|&b| cx.fn_ident(b));
                let outs = branches.iter().map(|&b| cx.out(b));
                let doc = format!(
                    "Inside the fan-out after `{}`: branches with `Some` output have run; `{name}` runs when all have.",
                    cx.name(*fork)
                );
                variants.push(quote! {
                    #[doc = #doc]
                    #v {
                        /// The fan-out step's output, while some branch still needs it.
                        input: ::core::option::Option<#fork_out>,
                        #( #[allow(missing_docs)] #fields: ::core::option::Option<#outs>, )*
                        /// Loop counters.
                        loops: Loops,
                    },
                });
                variant_names.push((v, name));
            }
            _ => {
                let input = cx.inp(i);
                let doc = format!("`{name}` runs next, with this input.");
                variants.push(quote! {
                    #[doc = #doc]
                    #v {
                        /// The step's input.
                        input: #input,
                        /// Loop counters.
                        loops: Loops,
                    },
                });
                variant_names.push((v, name));
            }
        }
    }
    let output = Ctx::output();
    let state_variant_idents = variant_names.iter().map(|(v, _)| v);
    let state_variant_strs: Vec<&String> = variant_names.iter().map(|(_, n)| n).collect();
    let state_variant_idents2 = variant_names.iter().map(|(v, _)| v);

    // FlowError variants: every step.
    let err_variants: Vec<_> = (0..cx.wf.steps.len()).map(|i| cx.variant(i)).collect();
    let err_types: Vec<_> = (0..cx.wf.steps.len()).map(|i| cx.err(i)).collect();
    let err_names: Vec<_> = (0..cx.wf.steps.len()).map(|i| cx.name(i)).collect();
    let err_docs: Vec<_> = err_names
        .iter()
        .map(|n| format!("Step `{n}` failed with its own error."))
        .collect();

    let execs = (0..cx.wf.steps.len()).map(|i| exec(cx, i));
    let arms = (0..cx.wf.steps.len()).filter_map(|i| arm(cx, i));
    let deps = cx.deps();
    let require_tools = cx
        .declares_tools()
        .then(|| quote!(__flow_require_tools(ctx)?;));
    // Sinks can be attached to every step but the routing ones, whose output is a route.
    let deliverable = (0..cx.wf.steps.len())
        .filter(|&i| !matches!(cx.graph.next[i], Next::Route { .. }))
        .map(|i| cx.name(i));
    let entry_v = cx.variant(cx.graph.entry);
    let entry_in = cx.inp(cx.graph.entry);
    let step_names = (0..cx.wf.steps.len()).map(|i| cx.name(i));
    // Spanned at the user's types: a private input or output type is reported there.
    let input_item = super::names::respan(
        quote!(type Input = #entry_in;),
        cx.input_span(cx.graph.entry, 0),
    );
    let output_item = super::names::respan(
        quote!(type Output = #output;),
        cx.output_span(cx.graph.exits[0]),
    );
    let run_fn = run_fn(cx);
    let refs = (0..cx.wf.steps.len()).filter_map(|i| state_ref(cx, i, &serde_crate));
    let state_serde = state_serde(cx, &serde_crate);

    quote! {
        /// Loop counters of a run: how often each back-edge has been taken.
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug, ::core::default::Default, ::core::cmp::PartialEq, ::core::cmp::Eq, #k::__private::serde::Serialize, #k::__private::serde::Deserialize)]
        #[serde(crate = #serde_crate, default)]
        #[non_exhaustive]
        pub struct Loops {
            #( #[doc = #counter_docs] pub #counters: u32, )*
        }

        /// Which visit of its step a run at these counters makes: their sum, which differs
        /// between any two visits of one step.
        #[doc(hidden)]
        #[inline]
        #[allow(unused_variables)]
        fn __flow_visit(loops: &Loops) -> #k::tool::Visit {
            #k::__private::visit(&[#(loops.#counters),*])
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
                    ::core::option::Option::Some(step) => ::core::write!(f, "FlowState({} at `{}`)", #wf_name, step),
                    ::core::option::Option::None => ::core::write!(f, "FlowState({} completed)", #wf_name),
                }
            }
        }

        impl FlowState {
            /// The step that runs next, or `None` when the run has completed.
            #[must_use]
            pub fn step(&self) -> ::core::option::Option<&'static str> {
                match self {
                    #( Self::#state_variant_idents { .. } => ::core::option::Option::Some(#state_variant_strs), )*
                    Self::Completed { .. } => ::core::option::Option::None,
                }
            }

            /// Whether the run has completed.
            #[must_use]
            pub fn is_completed(&self) -> bool {
                ::core::matches!(self, Self::Completed { .. })
            }

            /// Loop counters, `None` when the run has completed.
            #[must_use]
            pub fn loops(&self) -> ::core::option::Option<Loops> {
                match self {
                    #( Self::#state_variant_idents2 { loops, .. } => ::core::option::Option::Some(*loops), )*
                    Self::Completed { .. } => ::core::option::Option::None,
                }
            }
        }

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
                use #k::__private::{SourceNone as _, SourceViaAsRef as _, SourceViaError as _};
                use #k::__private::show::{ViaDisplay as _, ViaNothing as _};
                match self {
                    #( Self::#err_variants(e) => {
                        ::core::write!(f, "workflow `{}`: step `{}` failed", #wf_name, #err_names)?;
                        // An error that is not a `source` is shown here instead.
                        if (&&&#k::__private::ErrorRef(e)).flow_source().is_none() {
                            (&&#k::__private::show::Show(e)).flow_show(f)?;
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
                use #k::__private::{SourceNone as _, SourceViaAsRef as _, SourceViaError as _};
                match self {
                    #( Self::#err_variants(e) => (&&&#k::__private::ErrorRef(e)).flow_source(), )*
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

        #(#refs)*
        #(#execs)*

        /// Drives the run; a panic anywhere in it fails the run instead of unwinding. Not an
        /// `async fn`, which would hold the state twice.
        #[doc(hidden)]
        fn __flow_guarded(ctx: &#k::state::Ctx<#deps>, state: FlowState) -> impl ::core::future::Future<Output = ::core::result::Result<#output, FlowError>> {
            #k::__private::guard_run(ctx, NAME, __flow_resume(ctx, state))
        }

        #[doc(hidden)]
        #[allow(unused_mut, unused_variables, clippy::too_many_lines, clippy::match_same_arms)]
        async fn __flow_resume(ctx: &#k::state::Ctx<#deps>, state: FlowState) -> ::core::result::Result<#output, FlowError> {
            #require_tools
            #k::__private::check_outputs(ctx, NAME, &[#(#deliverable),*])?;
            let mut state = state;
            let mut attempt = #k::__private::first_attempt(ctx);
            loop {
                let (step, next): (&'static str, FlowState) = match state {
                    #(#arms)*
                    FlowState::Completed { output } => return ::core::result::Result::Ok(output),
                };
                state = next;
                #k::__private::checkpoint(ctx, NAME, FINGERPRINT, step, state.is_completed(), &state).await?;
                attempt = 1;
            }
        }

        /// This workflow, for engines that drive any workflow through the runtime's `Workflow` trait.
        #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::default::Default)]
        pub struct Workflow;

        #[automatically_derived]
        impl #k::state::Workflow for Workflow {
            const NAME: &'static str = NAME;
            const FINGERPRINT: &'static str = FINGERPRINT;
            const MERMAID: &'static str = MERMAID;
            const STEPS: &'static [&'static str] = &[#(#step_names),*];
            type Deps = #deps;
            #input_item
            #output_item
            type Error = FlowError;
            type State = FlowState;

            fn runtime_error(error: &FlowError) -> ::core::option::Option<&#k::error::RuntimeError> {
                match error {
                    FlowError::Runtime(e) => ::core::option::Option::Some(e),
                    _ => ::core::option::Option::None,
                }
            }

            fn start(input: #entry_in) -> FlowState {
                FlowState::#entry_v { input, loops: ::core::default::Default::default() }
            }

            fn resume(ctx: &#k::state::Ctx<#deps>, state: FlowState) -> impl ::core::future::Future<Output = ::core::result::Result<#output, FlowError>> + ::core::marker::Send {
                __flow_guarded(ctx, state)
            }
        }

        impl Workflow {
            /// Runs the whole graph to its output, parallel branches concurrently, storing a checkpoint
            /// after every step when `ctx` has a store.
            ///
            /// # Errors
            ///
            /// The first step that fails, or the runtime; a panic in a step, a tool or a sink is
            /// returned as `RuntimeError::Panicked`, it does not unwind.
            #run_fn

            /// Continues a run from `state` (for example its latest checkpoint) to its output.
            ///
            /// # Errors
            ///
            /// The first step that fails, or the runtime.
            pub async fn resume(ctx: &#k::state::Ctx<#deps>, state: FlowState) -> ::core::result::Result<#output, FlowError> {
                __flow_guarded(ctx, state).await
            }
        }
    }
}

/// `__flow_exec_x`: calls the user's step with its context and maps its error.
fn exec(cx: &Ctx<'_>, i: usize) -> TokenStream {
    let k = cx.krate;
    let step = &cx.wf.steps[i];
    let f = cx.fn_ident(i);
    let name = cx.name(i);
    let exec = cx.exec(i);
    let o = cx.out(i);
    let v = cx.variant(i);
    let deps = cx.deps();
    // The context is built only for a step that takes one, and handed over through a check
    // that names the workflow's deps when the parameter's type differs.
    let (make_ctx, ctx_arg) = match &step.ctx {
        Some(ty) => {
            let tr = cx.ctx_check(i);
            let ctx_ty = cx.step_ctx_type(i);
            let call = super::names::respan(quote!(<&#ctx_ty as #tr<#ty>>::feed), ty.span());
            (
                quote!(let step_ctx: #ctx_ty = #k::__private::step_ctx(ctx, #name, attempt, visit);),
                quote!(#call(&step_ctx),),
            )
        }
        None => (quote!(let _ = (ctx, attempt, visit);), quote!()),
    };
    let step_return = quote!(#k::__private::StepReturn);
    // After the step succeeds, its output goes to the sinks attached to it (not for a routing
    // step: its output is the route taken).
    let exit = step.exit.is_some();
    // A step returning `Sleep<T>`: its `T` goes on, and the run waits (parked, with a store)
    // before the next step.
    let (unwrap_sleep, schedule) = if step.sleep.is_some() {
        (
            quote!(let (out, wake) = #k::state::Sleep::into_parts(out);),
            quote!(#k::__private::schedule(ctx, wake).await?;),
        )
    } else {
        (quote!(), quote!())
    };
    let deliver = if matches!(cx.graph.next[i], Next::Route { .. }) {
        quote! {
            #unwrap_sleep
            #schedule
            ::core::result::Result::Ok(out)
        }
    } else {
        quote! {
            #unwrap_sleep
            #k::__private::deliver(ctx, NAME, #name, visit, #exit, || {
                #[allow(unused_imports)]
                use #k::__private::{NoJson as _, ToJson as _};
                (&#k::__private::Out(&out)).json()
            }).await?;
            #schedule
            ::core::result::Result::Ok(out)
        }
    };
    // A step waiting for an event gets it (or its timeout) as its last argument.
    let (wait, event_arg) = match (&step.event, &step.timeout) {
        (Some((ty, _)), Some((timeout, _))) => {
            let event = super::waits::event_name(ty);
            let tr = cx.event_check(i);
            let user = step.inputs.get(1).map(|input| &input.ty);
            let span = super::waits::event_param_span(cx, i);
            let feed =
                super::names::respan(quote!(<#k::state::Event<#ty> as #tr<#user>>::feed), span);
            let typed = super::names::respan(
                quote!(let timeout: ::core::time::Duration =),
                timeout.span(),
            );
            (
                quote! {
                    #typed #timeout;
                    let event: #k::state::Event<#ty> = {
                        #[allow(unused_imports)]
                        use #k::__private::event_wait::{ViaNothing as _, ViaSerde as _};
                        (&&#k::__private::event_wait::Wait::<#ty>::new()).wait(ctx, NAME, #name, #event, timeout).await?
                    };
                },
                quote!(, #feed(event)),
            )
        }
        _ => (quote!(), quote!()),
    };
    match &cx.graph.roles[i] {
        Role::Join { .. } => {
            let params: Vec<_> = (0..step.inputs.len())
                .map(|n| format_ident!("in{}", n))
                .collect();
            let types = (0..step.inputs.len()).map(|n| cx.inp_k(i, n));
            quote! {
                #[doc(hidden)]
                #[allow(clippy::too_many_arguments)]
                async fn #exec(ctx: &#k::state::Ctx<#deps>, attempt: u32, visit: #k::tool::Visit, #(#params: #types),*) -> ::core::result::Result<#o, FlowError> {
                    #make_ctx
                    let out = #k::__private::guard(ctx, NAME, #name, self::#f(#ctx_arg #(#params),*)).await?;
                    let out = <_ as #step_return>::into_result(out).map_err(FlowError::#v)?;
                    #deliver
                }
            }
        }
        _ if step.workers.is_some() => {
            let n = step.workers.map_or(1, |(n, _)| n);
            let input = cx.inp(i);
            // Each item has its own context: its own visit, so its own calls and keys.
            let (index, item_ctx) = match &step.ctx {
                Some(_) => (
                    quote!(index),
                    quote!(let step_ctx = #k::__private::item_ctx(&step_ctx, index);),
                ),
                None => (quote!(_), quote!()),
            };
            quote! {
                #[doc(hidden)]
                async fn #exec(ctx: &#k::state::Ctx<#deps>, attempt: u32, visit: #k::tool::Visit, input: #input) -> ::core::result::Result<#o, FlowError> {
                    #make_ctx
                    let out = #k::__private::map_ordered(input, #n, |#index, item| {
                        #item_ctx
                        async move { <_ as #step_return>::into_result(self::#f(#ctx_arg item).await) }
                    });
                    let out = #k::__private::guard(ctx, NAME, #name, out).await?.map_err(FlowError::#v)?;
                    #deliver
                }
            }
        }
        _ => {
            let input = cx.inp(i);
            quote! {
                #[doc(hidden)]
                async fn #exec(ctx: &#k::state::Ctx<#deps>, attempt: u32, visit: #k::tool::Visit, input: #input) -> ::core::result::Result<#o, FlowError> {
                    #wait
                    #make_ctx
                    let out = #k::__private::guard(ctx, NAME, #name, self::#f(#ctx_arg input #event_arg)).await?;
                    let out = <_ as #step_return>::into_result(out).map_err(FlowError::#v)?;
                    #deliver
                }
            }
        }
    }
}

/// The next state after step `i` produced `out` (an expression), with `loops` in scope.
pub(crate) fn transition(cx: &Ctx<'_>, i: usize, out: &TokenStream) -> TokenStream {
    let k = cx.krate;
    match &cx.graph.next[i] {
        Next::Exit => {
            let f = cx.to_output(i);
            quote!(FlowState::Completed { output: #f(#out) })
        }
        Next::Step(s) => {
            let v = cx.variant(*s);
            let f = cx.edge(*s, &cx.name(i));
            quote!(FlowState::#v { input: #f(#out), loops })
        }
        Next::Fork { join } => {
            let v = cx.variant(*join);
            let Role::Join { branches, .. } = &cx.graph.roles[*join] else {
                return quote!();
            };
            let fields = branches.iter().map(|&b| cx.fn_ident(b));
            quote!(FlowState::#v { input: ::core::option::Option::Some(#out), #( #fields: ::core::option::Option::None, )* loops })
        }
        // Branches never transition alone: the join's arm collects them.
        Next::Join { .. } => quote!(),
        Next::Route { enum_index, arms } => {
            let route = &cx.wf.enums[*enum_index];
            let enum_name = &route.name;
            let arms = arms.iter().map(|arm| {
                let variant = &route.variants[arm.variant].name;
                let target = cx.variant(arm.target);
                let f = cx.route_edge(i, variant);
                let go = quote!(FlowState::#target { input: #f(value), loops });
                match (&arm.bound, arm.counter) {
                    (None, None) => quote!(#enum_name::#variant(value) => #go,),
                    (None, Some(counter)) => {
                        let counter = cx.counter(counter);
                        quote! {
                            #enum_name::#variant(value) => {
                                loops.#counter = loops.#counter.saturating_add(1);
                                #go
                            }
                        }
                    }
                    (Some(bound), _) => {
                        let counter = cx.counter(bound.counter);
                        let max = bound.max;
                        let ex = cx.variant(bound.exhausted);
                        let exf = cx.exhaust_edge(i, variant);
                        quote! {
                            #enum_name::#variant(value) => {
                                if loops.#counter >= #max {
                                    FlowState::#ex { input: #exf(#k::state::LoopExhausted::new(loops.#counter, value)), loops }
                                } else {
                                    loops.#counter += 1;
                                    #go
                                }
                            }
                        }
                    }
                }
            });
            let routes = cx.routes_fn(i);
            quote!(match #routes(#out) { #(#arms)* })
        }
    }
}

/// The `match` arm of `resume` for the state whose next step is `i`.
fn arm(cx: &Ctx<'_>, i: usize) -> Option<TokenStream> {
    let k = cx.krate;
    let v = cx.variant(i);
    let name = cx.name(i);
    let exec = cx.exec(i);
    match &cx.graph.roles[i] {
        Role::Branch { .. } => None,
        Role::Join { fork, branches } => {
            let next = transition(cx, i, &quote!(out));
            let fields: Vec<_> = branches.iter().map(|&b| cx.fn_ident(b)).collect();
            // Locals get generated names: a branch may be called anything, `running` included.
            let slots: Vec<_> = (0..branches.len())
                .map(|n| format_ident!("__flow_slot{}", n))
                .collect();
            let branch_enum = format_ident!("__flow_Branch_{}", name);
            let branch_variants: Vec<_> = branches.iter().map(|&b| cx.variant(b)).collect();
            let branch_names: Vec<_> = branches.iter().map(|&b| cx.name(b)).collect();
            let branch_execs: Vec<_> = branches.iter().map(|&b| cx.exec(b)).collect();
            let feeds_in: Vec<_> = branches
                .iter()
                .map(|&b| cx.edge(b, &cx.name(*fork)))
                .collect();
            let feeds_out: Vec<_> = branches.iter().map(|&b| cx.edge(i, &cx.name(b))).collect();
            let clone_fn = cx.clone_fn(*fork);
            let state_ref = format_ident!("__flow_StateRef_{}", name);
            let vindex = variant_index(cx, i);
            let vname = v.to_string();
            Some(quote! {
                FlowState::#v { input: __flow_input, #(#fields: mut #slots,)* mut loops } => {
                    if #(#slots.is_none())||* {
                        let ::core::option::Option::Some(__flow_input) = __flow_input else {
                            return ::core::result::Result::Err(FlowError::Runtime(#k::__private::invalid_state(
                                NAME, #name, "a branch has not run, but the fan-out's input is missing",
                            )));
                        };
                        let mut __flow_running = #k::__private::FuturesUnordered::<#k::__private::BoxFuture<'_, ::core::result::Result<#branch_enum, FlowError>>>::new();
                        #(
                            if #slots.is_none() {
                                let __flow_branch_input = #feeds_in(#clone_fn(&__flow_input));
                                __flow_running.push(::std::boxed::Box::pin(async move {
                                    #branch_execs(ctx, attempt, __flow_visit(&loops), __flow_branch_input).await.map(#branch_enum::#branch_variants)
                                }));
                            }
                        )*
                        while let ::core::option::Option::Some(__flow_done) = #k::__private::next_branch(&mut __flow_running).await {
                            let __flow_branch = match __flow_done? {
                                #( #branch_enum::#branch_variants(out) => { #slots = ::core::option::Option::Some(out); #branch_names } )*
                            };
                            let __flow_all_done = #(#slots.is_some())&&*;
                            let __flow_snapshot = #state_ref {
                                input: if __flow_all_done { ::core::option::Option::None } else { ::core::option::Option::Some(&__flow_input) },
                                #( #fields: #slots.as_ref(), )*
                                loops: &loops,
                            };
                            let __flow_snapshot = #k::__private::state_serde::Variant { index: #vindex, name: #vname, value: &__flow_snapshot };
                            #k::__private::checkpoint(ctx, NAME, FINGERPRINT, __flow_branch, false, &__flow_snapshot).await?;
                        }
                        // The branches were the first steps of this resume; the join is not.
                        attempt = 1;
                    }
                    let (#(::core::option::Option::Some(#slots),)*) = (#(#slots,)*) else {
                        return ::core::result::Result::Err(FlowError::Runtime(#k::__private::invalid_state(
                            NAME, #name, "a branch finished without an output",
                        )));
                    };
                    let out = #exec(ctx, attempt, __flow_visit(&loops), #(#feeds_out(#slots)),*).await?;
                    (#name, #next)
                }
            })
        }
        _ => {
            let next = transition(cx, i, &quote!(out));
            Some(quote! {
                FlowState::#v { input, mut loops } => {
                    let out = #exec(ctx, attempt, __flow_visit(&loops), input).await?;
                    (#name, #next)
                }
            })
        }
    }
}

/// `Workflow::run`. When the entry step takes `Valid<T>`, its input is `impl
/// __flow_EntryInput`, so a raw `T` is reported as "validate first" (like `Flow::new`), and it
/// returns a boxed future: an opaque one would carry the unsatisfied bound into its type and
/// report it again at the call and at the `.await`. `run_or_resume` gets the same inherent
/// twin, which `Workflow::run_or_resume(…)` finds before the trait's method.
fn run_fn(cx: &Ctx<'_>) -> TokenStream {
    let k = cx.krate;
    let deps = cx.deps();
    let output = Ctx::output();
    let (param, convert) = cx.entry_input();
    if !super::typestate::entry_takes_valid(cx) {
        return quote! {
            pub async fn run(ctx: &#k::state::Ctx<#deps>, input: #param) -> ::core::result::Result<#output, FlowError> {
                __flow_guarded(ctx, <Self as #k::state::Workflow>::start(input)).await
            }
        };
    }
    quote! {
        pub fn run<'a>(ctx: &'a #k::state::Ctx<#deps>, input: #param) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = ::core::result::Result<#output, FlowError>> + ::core::marker::Send + 'a>> {
            let input = #convert;
            ::std::boxed::Box::pin(__flow_guarded(ctx, <Self as #k::state::Workflow>::start(input)))
        }

        /// Runs like [`Workflow::run`], or continues the stored run under the context's run id
        /// from its latest checkpoint: the runtime's `Workflow::run_or_resume`.
        ///
        /// # Errors
        ///
        /// The first step that fails, or the runtime (a stopped or incompatible stored run).
        pub fn run_or_resume<'a>(ctx: &'a #k::state::Ctx<#deps>, input: #param) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = ::core::result::Result<#output, FlowError>> + ::core::marker::Send + 'a>> {
            let input = #convert;
            ::std::boxed::Box::pin(<Self as #k::state::Workflow>::run_or_resume(ctx, input))
        }
    }
}

/// A borrowed twin of a join's `FlowState` variant, serialising to the same JSON, so that a
/// fan-out can checkpoint after each branch without cloning outputs.
fn state_ref(cx: &Ctx<'_>, i: usize, serde_crate: &str) -> Option<TokenStream> {
    let k = cx.krate;
    let Role::Join { fork, branches } = &cx.graph.roles[i] else {
        return None;
    };
    let name = cx.name(i);
    let state_ref = format_ident!("__flow_StateRef_{}", name);
    let branch_enum = format_ident!("__flow_Branch_{}", name);
    let fork_out = cx.out(*fork);
    let fields: Vec<_> = branches.iter().map(|&b| cx.fn_ident(b)).collect();
    let outs: Vec<_> = branches.iter().map(|&b| cx.out(b)).collect();
    let branch_variants: Vec<_> = branches.iter().map(|&b| cx.variant(b)).collect();
    Some(quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(#k::__private::serde::Serialize)]
        #[serde(crate = #serde_crate)]
        struct #state_ref<'a> {
            input: ::core::option::Option<&'a #fork_out>,
            #( #fields: ::core::option::Option<&'a #outs>, )*
            loops: &'a Loops,
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        enum #branch_enum {
            #( #branch_variants(#outs), )*
        }
    })
}

/// `Serialize` and `Deserialize` for `FlowState`, written out over generic helpers instead of
/// derived (see `__private::state_serde`). Joins, which have per-workflow field names, use
/// small derived structs.
fn state_serde(cx: &Ctx<'_>, serde_crate: &str) -> TokenStream {
    let k = cx.krate;
    let h = quote!(#k::__private::state_serde);
    let serde = quote!(#k::__private::serde);
    let output = Ctx::output();
    let mut names = Vec::new();
    let mut ser_arms = Vec::new();
    let mut de_arms = Vec::new();
    let mut join_structs = Vec::new();
    for (i, role) in cx.graph.roles.iter().enumerate() {
        let v = cx.variant(i);
        let vs = v.to_string();
        let index = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let index64 = u64::from(index);
        match role {
            Role::Branch { .. } => continue,
            Role::Join { fork, branches } => {
                let fields: Vec<_> = branches.iter().map(|&b| cx.fn_ident(b)).collect();
                let outs: Vec<_> = branches.iter().map(|&b| cx.out(b)).collect();
                let fork_out = cx.out(*fork);
                let state_ref = format_ident!("__flow_StateRef_{}", cx.name(i));
                let de = format_ident!("__flow_StateDe_{}", cx.name(i));
                join_structs.push(quote! {
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    #[derive(#serde::Deserialize)]
                    #[serde(crate = #serde_crate)]
                    struct #de {
                        input: ::core::option::Option<#fork_out>,
                        #( #fields: ::core::option::Option<#outs>, )*
                        loops: Loops,
                    }
                });
                ser_arms.push(quote! {
                    Self::#v { input, #(#fields,)* loops } => serializer.serialize_newtype_variant(
                        "FlowState", #index, #vs,
                        &#state_ref { input: input.as_ref(), #( #fields: #fields.as_ref(), )* loops },
                    ),
                });
                de_arms.push(quote! {
                    if key.is(#vs, #index64) {
                        let p: #de = #serde::de::VariantAccess::newtype_variant(variant)?;
                        return ::core::result::Result::Ok(FlowState::#v { input: p.input, #( #fields: p.#fields, )* loops: p.loops });
                    }
                });
            }
            Role::Entry | Role::Single => {
                let input = cx.inp(i);
                // Through `__private::stored`: a stored type that is not serde is reported
                // once, by `__private::stored_check`, not again here.
                ser_arms.push(quote! {
                    Self::#v { input, loops } => (&&#k::__private::stored::Pick(input)).pos(serializer, #index, #vs, loops),
                });
                de_arms.push(quote! {
                    if key.is(#vs, #index64) {
                        let (input, loops): (#input, Loops) = (&&#k::__private::stored::PickDe::<#input>::new()).pos(variant)?;
                        return ::core::result::Result::Ok(FlowState::#v { input, loops });
                    }
                });
            }
        }
        names.push(vs);
    }
    let done_index = u32::try_from(names.len()).unwrap_or(u32::MAX);
    let done_index64 = u64::from(done_index);
    names.push("Completed".to_owned());
    let expecting = format!("a `FlowState` of workflow `{}`", cx.wf.name);
    quote! {
        #(#join_structs)*

        impl #serde::Serialize for FlowState {
            fn serialize<S: #serde::Serializer>(&self, serializer: S) -> ::core::result::Result<<S as #serde::Serializer>::Ok, <S as #serde::Serializer>::Error> {
                #[allow(unused_imports)]
                use #k::__private::stored::{ViaNothing as _, ViaSerde as _};
                match self {
                    #(#ser_arms)*
                    Self::Completed { output } => (&&#k::__private::stored::Pick(output)).done(serializer, #done_index),
                }
            }
        }

        impl<'de> #serde::Deserialize<'de> for FlowState {
            fn deserialize<D: #serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, <D as #serde::Deserializer<'de>>::Error> {
                const VARIANTS: &[&str] = &[#(#names),*];
                struct Visit;
                impl<'de> #serde::de::Visitor<'de> for Visit {
                    type Value = FlowState;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(#expecting)
                    }
                    fn visit_enum<A: #serde::de::EnumAccess<'de>>(self, data: A) -> ::core::result::Result<FlowState, <A as #serde::de::EnumAccess<'de>>::Error> {
                        #[allow(unused_imports)]
                        use #k::__private::stored::{DeViaNothing as _, DeViaSerde as _};
                        let (key, variant): (#h::VariantKey, A::Variant) = #serde::de::EnumAccess::variant(data)?;
                        #(#de_arms)*
                        if key.is("Completed", #done_index64) {
                            let output: #output = (&&#k::__private::stored::PickDe::<#output>::new()).done(variant)?;
                            return ::core::result::Result::Ok(FlowState::Completed { output });
                        }
                        ::core::result::Result::Err(key.unknown(VARIANTS))
                    }
                }
                deserializer.deserialize_enum("FlowState", VARIANTS, Visit)
            }
        }
    }
}

/// The position of step `i`'s variant in `FlowState` (branches have none).
fn variant_index(cx: &Ctx<'_>, i: usize) -> u32 {
    let before = cx.graph.roles[..i]
        .iter()
        .filter(|r| !matches!(r, Role::Branch { .. }))
        .count();
    u32::try_from(before).unwrap_or(u32::MAX)
}
