//! The per-step `exec` functions, `__flow_resume` (which drives a run through the graph from
//! any state), and `Workflow` with `run` and `resume`.

use super::Gen;
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;

/// Every step's `exec`, the resume loop, and `Workflow` with its runtime trait impl.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let output = Gen::output();
    let execs = (0..g.wf.steps.len()).map(|i| exec(g, i));
    let arms = (0..g.wf.steps.len()).filter_map(|i| arm(g, i));
    let deps = g.deps();
    let require_tools = g
        .declares_tools()
        .then(|| quote!(__flow_require_tools(ctx)?;));
    // Sinks can be attached to every step but the routing ones, whose output is a route.
    let deliverable = (0..g.wf.steps.len())
        .filter(|&i| !matches!(g.graph.next[i], Next::Route { .. }))
        .map(|i| g.name(i));
    let entry_v = g.variant(g.graph.entry);
    let entry_in = g.inp(g.graph.entry);
    let step_names = (0..g.wf.steps.len()).map(|i| g.name(i));
    // Spanned at the user's types: a private input or output type is reported there.
    let input_item = super::respan(
        quote!(type Input = #entry_in;),
        g.input_span(g.graph.entry, 0),
    );
    let output_item = super::respan(
        quote!(type Output = #output;),
        g.output_span(g.graph.exits[0]),
    );
    let run_fn = run_fn(g);

    quote! {
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
fn exec(g: &Gen<'_>, i: usize) -> TokenStream {
    let k = g.krate;
    let step = &g.wf.steps[i];
    let f = g.fn_ident(i);
    let name = g.name(i);
    let exec = g.exec(i);
    let o = g.out(i);
    let v = g.variant(i);
    let deps = g.deps();
    // The context is built only for a step that takes one, and handed over through a check
    // that names the workflow's deps when the parameter's type differs.
    let (make_ctx, ctx_arg) = match &step.ctx {
        Some(ty) => {
            let tr = g.ctx_check(i);
            let ctx_ty = g.step_ctx_type(i);
            let call = super::respan(quote!(<&#ctx_ty as #tr<#ty>>::feed), ty.span());
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
    let deliver = if matches!(g.graph.next[i], Next::Route { .. }) {
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
            let tr = g.event_check(i);
            let user = step.inputs.get(1).map(|input| &input.ty);
            let span = super::waits::event_param_span(g, i);
            let feed = super::respan(quote!(<#k::state::Event<#ty> as #tr<#user>>::feed), span);
            let typed = super::respan(
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
    match &g.graph.roles[i] {
        Role::Join { .. } => {
            let params: Vec<_> = (0..step.inputs.len())
                .map(|n| format_ident!("in{}", n))
                .collect();
            let types = (0..step.inputs.len()).map(|n| g.inp_k(i, n));
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
            let input = g.inp(i);
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
            let input = g.inp(i);
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
pub(crate) fn transition(g: &Gen<'_>, i: usize, out: &TokenStream) -> TokenStream {
    let k = g.krate;
    match &g.graph.next[i] {
        Next::Exit => {
            let f = g.to_output(i);
            quote!(FlowState::Completed { output: #f(#out) })
        }
        Next::Step(s) => {
            let v = g.variant(*s);
            let f = g.edge(*s, &g.name(i));
            quote!(FlowState::#v { input: #f(#out), loops })
        }
        Next::Fork { join } => {
            let v = g.variant(*join);
            let Role::Join { branches, .. } = &g.graph.roles[*join] else {
                return quote!();
            };
            let fields = branches.iter().map(|&b| g.fn_ident(b));
            quote!(FlowState::#v { input: ::core::option::Option::Some(#out), #( #fields: ::core::option::Option::None, )* loops })
        }
        // Branches never transition alone: the join's arm collects them.
        Next::Join { .. } => quote!(),
        Next::Route { enum_index, arms } => {
            let route = &g.wf.enums[*enum_index];
            let enum_name = &route.name;
            let arms = arms.iter().map(|arm| {
                let variant = &route.variants[arm.variant].name;
                let target = g.variant(arm.target);
                let f = g.route_edge(i, variant);
                let go = quote!(FlowState::#target { input: #f(value), loops });
                match (&arm.bound, arm.counter) {
                    (None, None) => quote!(#enum_name::#variant(value) => #go,),
                    (None, Some(counter)) => {
                        let counter = g.counter(counter);
                        quote! {
                            #enum_name::#variant(value) => {
                                loops.#counter = loops.#counter.saturating_add(1);
                                #go
                            }
                        }
                    }
                    (Some(bound), _) => {
                        let counter = g.counter(bound.counter);
                        let max = bound.max;
                        let ex = g.variant(bound.exhausted);
                        let exf = g.exhaust_edge(i, variant);
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
            let routes = g.routes_fn(i);
            quote!(match #routes(#out) { #(#arms)* })
        }
    }
}

/// The `match` arm of `resume` for the state whose next step is `i`.
fn arm(g: &Gen<'_>, i: usize) -> Option<TokenStream> {
    let k = g.krate;
    let v = g.variant(i);
    let name = g.name(i);
    let exec = g.exec(i);
    match &g.graph.roles[i] {
        Role::Branch { .. } => None,
        Role::Join { fork, branches } => {
            let next = transition(g, i, &quote!(out));
            let fields: Vec<_> = branches.iter().map(|&b| g.fn_ident(b)).collect();
            // Locals get generated names: a branch may be called anything, `running` included.
            let slots: Vec<_> = (0..branches.len())
                .map(|n| format_ident!("__flow_slot{}", n))
                .collect();
            let branch_enum = format_ident!("__flow_Branch_{}", name);
            let branch_variants: Vec<_> = branches.iter().map(|&b| g.variant(b)).collect();
            let branch_names: Vec<_> = branches.iter().map(|&b| g.name(b)).collect();
            let branch_execs: Vec<_> = branches.iter().map(|&b| g.exec(b)).collect();
            let feeds_in: Vec<_> = branches
                .iter()
                .map(|&b| g.edge(b, &g.name(*fork)))
                .collect();
            let feeds_out: Vec<_> = branches.iter().map(|&b| g.edge(i, &g.name(b))).collect();
            let clone_fn = g.clone_fn(*fork);
            let state_ref = format_ident!("__flow_StateRef_{}", name);
            let vindex = super::state::variant_index(g, i);
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
            let next = transition(g, i, &quote!(out));
            Some(quote! {
                FlowState::#v { input, mut loops } => {
                    let out = #k::__private::boxed_step(#exec(ctx, attempt, __flow_visit(&loops), input)).await?;
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
fn run_fn(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let deps = g.deps();
    let output = Gen::output();
    let (param, convert) = g.entry_input();
    if !super::typestate::entry_takes_valid(g) {
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
