//! The per-step adapters (`__flow_call_x`, and `__flow_exec_x` for the typestate API), the
//! graph table and `Machine` the runtime's driver reads, and `Workflow` with `run` and `resume`.

use super::Gen;
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

/// Every step's adapter, the graph table, `Machine`, and `Workflow` with its runtime trait impl.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let output = Gen::output();
    let calls = (0..g.wf.steps.len()).map(|i| call(g, i));
    let deps = g.deps();
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
    let machine = machine(g);

    quote! {
        // The workflow's context, as its adapters take it.
        #[allow(non_camel_case_types)]
        type __flow_Ctx = #k::state::Ctx<#deps>;
        #(#calls)*
        #machine

        /// This workflow, for engines that drive any workflow through the runtime's `Workflow` trait.
        #[derive(::core::fmt::Debug)]
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

            fn failed_at(error: &FlowError) -> #k::state::FailedAt<'_> {
                match error.__flow_failure() {
                    __flow_p::Ok(failure) => #k::state::FailedAt::Step(failure.step),
                    __flow_p::Err(e) => #k::state::FailedAt::Runtime(e),
                }
            }

            fn start(input: #entry_in) -> FlowState {
                FlowState::#entry_v { input, loops: ::core::default::Default::default() }
            }

            fn drive(ctx: &#k::state::Ctx<#deps>, state: FlowState, resume: __flow_p::Resume) -> impl ::core::future::Future<Output = #k::state::Outcome<#output, FlowError>> + ::core::marker::Send {
                __flow_p::drive::<Self>(ctx, state, resume)
            }

            fn output(state: FlowState) -> __flow_p::Result<#output, FlowState> {
                <Self as __flow_p::Machine>::finish(state)
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
            pub fn resume(ctx: &#k::state::Ctx<#deps>, state: FlowState) -> impl ::core::future::Future<Output = __flow_p::Result<#output, FlowError>> + ::core::marker::Send + '_ {
                <Self as #k::state::Workflow>::resume(ctx, state)
            }
        }
    }
}

/// `__flow_call_x`: step `x`'s adapter core: takes its event, builds its context, calls the
/// user's function, maps its error, splits off its `Sleep`, serialises its output when the
/// driver says a sink waits for it.
fn call(g: &Gen<'_>, i: usize) -> TokenStream {
    let k = g.krate;
    let step = &g.wf.steps[i];
    let f = g.fn_ident(i);
    let name = g.name(i);
    let call = format_ident!("__flow_call_{}", f);
    let o = g.out(i);
    let v = g.variant(i);
    // The earlier outputs the step reads (`#[from]`), borrowed from its state's tuple.
    let kept_ty = super::earlier::kept_type(g, i);
    let from_args = super::earlier::args(g, i, &quote!(__flow_kept));
    // The context is built only for a step that takes one, and handed over through a check
    // that names the workflow's deps when the parameter's type differs.
    let (make_ctx, ctx_arg) = match &step.ctx {
        Some(ty) => {
            let tr = g.ctx_check(i);
            let ctx_ty = g.step_ctx_type(i);
            // Only the generated tokens take the parameter's span: the user's type keeps its own,
            // so a type that does not resolve is reported once, where it is written.
            let span = ty.span();
            let ctx_ty_at = super::respan(quote!(#ctx_ty), span);
            let call = quote_spanned!(span=> <&#ctx_ty_at as #tr<#ty>>::feed);
            (
                quote!(let step_ctx: #ctx_ty = __flow_p::step_ctx(ctx, &run);),
                quote!(#call(&step_ctx),),
            )
        }
        None => (quote!(), quote!()),
    };
    let step_return = quote!(__flow_p::StepReturn);
    let (unwrap_sleep, wake) = if step.sleep.is_some() {
        (
            quote!(let (out, wake) = #k::state::Sleep::into_parts(out);),
            quote!(__flow_p::Some(wake)),
        )
    } else {
        (quote!(), quote!(__flow_p::None))
    };
    // A routing step's output is the route taken: no sink sees it.
    let json = if matches!(g.graph.next[i], Next::Route { .. }) {
        quote!(__flow_p::no_json::<#o>)
    } else {
        // `NoJson` and `ToJson` are imported once, beside `__flow_p`.
        quote!((&__flow_p::JsonOf::<#o>::new()).json_fn())
    };
    // A step waiting for an event gets it (or its timeout) as its last argument.
    let (wait, event_arg) = match &step.event {
        Some((ty, _)) => {
            let event = super::waits::event_name(ty);
            let tr = g.event_check(i);
            let user = step.inputs.get(1).map(|input| &input.ty);
            let span = super::waits::event_param_span(g, i);
            let (k, tr) = (
                super::respan(quote!(#k), span),
                super::respan(quote!(#tr), span),
            );
            let feed = quote_spanned!(span=> <#k::state::Event<#ty> as #tr<#user>>::feed);
            (
                quote! {
                    let event: #k::state::Event<#ty> = {
                        #[allow(unused_imports)]
                        use __flow_p::event_wait::{ViaNothing as _, ViaSerde as _};
                        let at = __flow_p::event_wait::At { run_id: ctx.run_id(), workflow: NAME, step: #name, event: #event };
                        (&&__flow_p::event_wait::Wait::<#ty>::new()).take(at, event)?
                    };
                },
                quote!(, #feed(event)),
            )
        }
        None => (quote!(), quote!()),
    };
    let (params, args) = if let Role::Join { .. } = &g.graph.roles[i] {
        let params: Vec<_> = (0..step.inputs.len())
            .map(|n| format_ident!("in{}", n))
            .collect();
        let types = (0..step.inputs.len()).map(|n| g.inp_k(i, n));
        (quote!(#(#params: #types),*), quote!(#(#params),*))
    } else {
        let input = g.inp(i);
        (quote!(input: #input), quote!(input))
    };
    // The adapter's future is declared `Send`, so that a step whose future is not is
    // reported once, here, at the step's name, and not again by each caller.
    let at = f.span();
    let o_at = super::spanned(&o, at);
    let ret = quote::quote_spanned!(at=>
        impl ::core::future::Future<Output = __flow_p::StepResult<#o_at, FlowError>> + ::core::marker::Send + 'a
    );
    // What follows the context: the call, its error mapped, its output handed on.
    let body = if let Some((n, _)) = step.workers {
        // Each item has its own context: its own visit, so its own calls and keys.
        let (index, item_ctx) = match &step.ctx {
            Some(_) => (
                quote!(index),
                quote!(let step_ctx = __flow_p::item_ctx(&step_ctx, index);),
            ),
            None => (quote!(_), quote!()),
        };
        quote! {
            let out = __flow_p::map_ordered(input, #n, |#index, item| {
                #item_ctx
                async move { <_ as #step_return>::into_result(self::#f(#ctx_arg item #from_args).await) }
            }).await.map_err(FlowError::#v)?;
            #unwrap_sleep
            __flow_p::Ok(__flow_p::Stepped::output(&run, out, #wake, #json))
        }
    } else if step.sleep.is_some() {
        quote! {
            let out = self::#f(#ctx_arg #args #event_arg #from_args).await;
            let out = <_ as #step_return>::into_result(out).map_err(FlowError::#v)?;
            #unwrap_sleep
            __flow_p::Ok(__flow_p::Stepped::output(&run, out, #wake, #json))
        }
    } else if step.ctx.is_none() && step.event.is_none() {
        // Nothing to build before the call (no context, no event): the adapter is a plain
        // function around the runtime's `step_output_after`, not an `async fn` of its own.
        return quote! {
            #[allow(clippy::too_many_arguments, unused_variables)]
            fn #call<'a>(ctx: &'a __flow_Ctx, run: __flow_p::StepRun, #params, __flow_kept: &'a #kept_ty, event: __flow_p::MaybeEvent) -> #ret {
                __flow_p::step_output_after(run, self::#f(#args #from_args), FlowError::#v, #json)
            }
        };
    } else {
        // The common case: one call of the runtime's `step_output`.
        quote!(__flow_p::step_output(&run, self::#f(#ctx_arg #args #event_arg #from_args).await, FlowError::#v, #json))
    };
    quote! {
        #[allow(clippy::too_many_arguments, unused_variables)]
        fn #call<'a>(ctx: &'a __flow_Ctx, run: __flow_p::StepRun, #params, __flow_kept: &'a #kept_ty, event: __flow_p::MaybeEvent) -> #ret {
            async move {
                #wait
                #make_ctx
                #body
            }
        }
    }
}

/// The graph table, the branch enum, and the `Machine` adapters.
#[allow(clippy::too_many_lines)]
fn machine(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let deps = g.deps();
    let output = Gen::output();
    let n = g.wf.steps.len();
    let mut infos = Vec::new();
    let mut timeouts = Vec::new();
    let mut positions = Vec::new();
    let mut steps = Vec::new();
    let mut branches = Vec::new();
    let mut merges = Vec::new();
    let mut branch_variants = Vec::new();
    for i in 0..n {
        let step = &g.wf.steps[i];
        let name = g.name(i);
        let v = g.variant(i);
        let f = g.fn_ident(i);
        let call = format_ident!("__flow_call_{}", f);
        let is_route = matches!(g.graph.next[i], Next::Route { .. });
        let kind = match &g.graph.roles[i] {
            Role::Branch { join, .. } => quote!(__flow_p::StepKind::Branch { join: #join }),
            Role::Join { branches, .. } => {
                quote!(__flow_p::StepKind::Join { branches: &[#(#branches),*] })
            }
            _ if is_route => quote!(__flow_p::StepKind::Route),
            _ => quote!(__flow_p::StepKind::Plain),
        };
        let exit = step.exit.is_some().then(|| quote!(.exit()));
        let routes = is_route.then(|| quote!(.routes()));
        let sleeps = step.sleep.is_some().then(|| quote!(.sleeps()));
        let wait = match (&step.event, &step.timeout) {
            (Some((ty, _)), Some((timeout, _))) => {
                let event = super::waits::event_name(ty);
                let tf = format_ident!("__flow_timeout_{}", f);
                let typed = super::respan(
                    quote!(let timeout: ::core::time::Duration =),
                    timeout.span(),
                );
                timeouts.push(quote! {
                    fn #tf() -> ::core::time::Duration {
                        #typed #timeout;
                        timeout
                    }
                });
                Some(quote!(.waits(#event, #tf)))
            }
            _ => None,
        };
        infos.push(quote! {
            __flow_p::StepInfo::new(#name, #kind) #routes #exit #wait #sleeps
        });
        match &g.graph.roles[i] {
            Role::Branch { join, .. } => {
                let jv = g.variant(*join);
                let Role::Join { fork, .. } = &g.graph.roles[*join] else {
                    continue;
                };
                let join_name = g.name(*join);
                // The first step of a branch takes a copy of the fork's output; a later one a
                // copy of the step before it, which the state keeps until this one has run.
                let prev = g
                    .graph
                    .chain(i)
                    .and_then(|(_, chain, pos)| pos.checked_sub(1).map(|p| chain[p]));
                let (source, feed_in, clone_fn, missing) = match prev {
                    None => (
                        quote!(input),
                        g.edge(i, g.name(*fork)),
                        g.clone_fn(*fork),
                        "a branch has not run, but the fan-out's input is missing",
                    ),
                    Some(p) => (
                        {
                            let field = g.fn_ident(p);
                            quote!(#field)
                        },
                        g.edge(i, g.name(p)),
                        g.clone_fn(p),
                        "a step of a branch has not run, but the output of the step before it is missing",
                    ),
                };
                let o = g.out(i);
                // The branch's future outlives the borrowed state: it gets copies of the
                // earlier outputs the join's state carries.
                let kf = super::earlier::fields(g, *join);
                let locals = super::earlier::locals(g, *join);
                let keeps = super::earlier::carried(g, *join)
                    .iter()
                    .map(|&x| super::earlier::keep_fn(g, x));
                branch_variants.push(quote!(#v(#o)));
                branches.push(quote! {
                    (#i, FlowState::#jv { #source: __flow_p::Some(__flow_input), #(#kf: #locals,)* .. }) => {
                        let input = #feed_in(#clone_fn(__flow_input));
                        let __flow_kept = (#(#keeps(#locals),)*);
                        __flow_p::boxed_step(async move {
                            __flow_p::Ok(#call(ctx, run, input, &__flow_kept, __flow_p::None).await?.map(__flow_Branch::#v))
                        })
                    }
                    (#i, _) => __flow_p::boxed_step(async move {
                        __flow_p::Err(FlowError::Runtime(__flow_p::invalid_state(
                            NAME, #join_name, #missing,
                        )))
                    }),
                });
            }
            Role::Join {
                branches: bs,
                chains,
                ..
            } => {
                let fields: Vec<_> = bs.iter().map(|&b| g.fn_ident(b)).collect();
                let slots: Vec<_> = (0..bs.len())
                    .map(|n| format_ident!("__flow_slot{}", n))
                    .collect();
                let feeds_out: Vec<_> = bs.iter().map(|&b| g.edge(i, g.name(b))).collect();
                let next = transition(g, i, &quote!(out));
                if chains.iter().all(|c| c.len() == 1) {
                    positions.push(quote! {
                        FlowState::#v { #(#fields: #slots,)* loops, .. } => {
                            let pending = [#((#bs, #slots.is_none())),*];
                            __flow_p::Position::Join {
                                step: #i,
                                visit: __flow_visit(loops),
                                pending: pending.into_iter().filter_map(|(b, p)| p.then_some(b)).collect(),
                            }
                        }
                    });
                } else {
                    positions.push(chain_position(g, i, chains));
                }
                let kf = super::earlier::fields(g, i);
                let locals = super::earlier::locals(g, i);
                let nexts = super::earlier::nexts(g, i);
                let copy_self = super::earlier::copy_self(g, i, &nexts, &quote!(out));
                let copy_branches = super::earlier::copy_branches(g, i, &nexts, &slots);
                let (bind, kept) = super::earlier::bind_kept(&locals);
                let next = quote!({ #copy_self #next });
                steps.push(quote! {
                    FlowState::#v { #(#fields: __flow_p::Some(#slots),)* #(#kf: #locals,)* mut loops, .. } => __flow_p::boxed_step(async move {
                        #bind
                        #copy_branches
                        let stepped = #call(ctx, run, #(#feeds_out(#slots)),*, #kept, event).await?;
                        __flow_p::Ok(stepped.map(move |out| #next))
                    }),
                });
                if chains.iter().any(|c| c.len() > 1) {
                    merges.extend(chain_merges(g, i, chains));
                    continue;
                }
                for (n, &b) in bs.iter().enumerate() {
                    let bv = g.variant(b);
                    let slot = &slots[n];
                    merges.push(quote! {
                        (FlowState::#v { input: __flow_input, #(#fields: #slots,)* .. }, __flow_Branch::#bv(value)) => {
                            *#slot = __flow_p::Some(value);
                            if #(#slots.is_some())&&* {
                                *__flow_input = __flow_p::None;
                            }
                            __flow_p::Ok(())
                        }
                    });
                }
            }
            _ => {
                let next = transition(g, i, &quote!(out));
                positions.push(quote! {
                    FlowState::#v { loops, .. } => __flow_p::Position::step(#i, __flow_visit(loops)),
                });
                let kf = super::earlier::fields(g, i);
                let locals = super::earlier::locals(g, i);
                let copy_self =
                    super::earlier::copy_self(g, i, &super::earlier::nexts(g, i), &quote!(out));
                let (bind, kept) = super::earlier::bind_kept(&locals);
                let next = if copy_self.is_empty() {
                    next
                } else {
                    quote!({ #copy_self #next })
                };
                // A step that reads no earlier output maps its adapter's future (no `async`
                // block of its own: one coroutine fewer per step to type-check and lay out);
                // one that does borrows them across the call, so it needs the block.
                let arm_body = if locals.is_empty() {
                    quote! {
                        __flow_p::boxed_step(
                            __flow_p::then_next(#call(ctx, run, input, #kept, event), move |out| #next),
                        )
                    }
                } else {
                    quote! {
                        __flow_p::boxed_step(async move {
                            #bind
                            let stepped = #call(ctx, run, input, #kept, event).await?;
                            __flow_p::Ok(stepped.map(move |out| #next))
                        })
                    }
                };
                steps.push(quote! {
                    FlowState::#v { input, #(#kf: #locals,)* mut loops } => #arm_body,
                });
            }
        }
    }
    let entry = g.graph.entry;
    let check_tools = g.declares_tools().then(|| {
        quote! {
            fn check_tools(ctx: &#k::state::Ctx<#deps>) -> __flow_p::Result<(), #k::error::RuntimeError> {
                __flow_require_tools(ctx)
            }
        }
    });
    let invalid = quote! {
        __flow_p::Err(__flow_p::invalid_state(NAME, run.name, "the run's state is not at this step"))
    };
    // Without a fan-out, the trait's defaults (the driver never calls them) and no branch type.
    let branching = if branches.is_empty() {
        quote!(
            type Branch = ::core::convert::Infallible;
        )
    } else {
        quote! {
            type Branch = __flow_Branch;

            fn branch<'a>(ctx: &'a #k::state::Ctx<#deps>, run: __flow_p::StepRun, state: &FlowState) -> __flow_p::BoxFuture<'a, __flow_p::Result<__flow_p::Stepped<__flow_Branch>, FlowError>> {
                match (run.step, state) {
                    #(#branches)*
                    _ => __flow_p::boxed_step(async move { #invalid.map_err(FlowError::Runtime) }),
                }
            }

            fn merge(state: &mut FlowState, out: __flow_Branch) -> __flow_p::Result<(), #k::error::RuntimeError> {
                match (state, out) {
                    #(#merges)*
                    #[allow(unreachable_patterns)]
                    _ => __flow_p::Err(__flow_p::invalid_state(NAME, "", "a branch's output does not fit the run's state")),
                }
            }
        }
    };
    let branch_enum = (!branch_variants.is_empty()).then(|| {
        quote! {
            /// A branch's output, on its way into its join's state.
            #[doc(hidden)]
            #[allow(non_camel_case_types, dead_code)]
            pub enum __flow_Branch {
                #(#branch_variants,)*
            }
        }
    });
    quote! {
        #(#timeouts)*

        #branch_enum

        #[automatically_derived]
        impl __flow_p::Machine for Workflow {
            const GRAPH: __flow_p::Graph = __flow_p::Graph {
                workflow: NAME,
                fingerprint: FINGERPRINT,
                entry: #entry,
                steps: &[#(#infos),*],
            };
            #branching

            #check_tools

            fn position(state: &FlowState) -> __flow_p::Position {
                match state {
                    #(#positions)*
                    FlowState::Completed { .. } => __flow_p::Position::Finished,
                }
            }

            #[allow(unused_mut, clippy::match_same_arms)]
            fn step(ctx: &__flow_Ctx, run: __flow_p::StepRun, state: FlowState, event: __flow_p::MaybeEvent) -> __flow_p::BoxFuture<'_, __flow_p::StepResult<FlowState, FlowError>> {
                match state {
                    #(#steps)*
                    _ => __flow_p::boxed_step(async move { #invalid.map_err(FlowError::Runtime) }),
                }
            }

            fn finish(state: FlowState) -> __flow_p::Result<#output, FlowState> {
                match state {
                    FlowState::Completed { output } => __flow_p::Ok(output),
                    state => __flow_p::Err(state),
                }
            }
        }
    }
}

/// The position of join `i`'s state when some branch is a chain: each branch is at the step
/// after its last step with an output, done once its last step has one.
fn chain_position(g: &Gen<'_>, i: usize, chains: &[Vec<usize>]) -> TokenStream {
    let v = g.variant(i);
    let steps = g.graph.chain_steps(i);
    let fields: Vec<_> = steps.iter().map(|&b| g.fn_ident(b)).collect();
    let locals: Vec<_> = (0..steps.len())
        .map(|n| format_ident!("__flow_f{}", n))
        .collect();
    let mut at = 0;
    let mut pending = Vec::new();
    for chain in chains {
        let mine = &locals[at..at + chain.len()];
        at += chain.len();
        // From the last step back: the first with an output says where the branch is.
        let mut expr = {
            let head = chain[0];
            quote!(__flow_p::Some(#head))
        };
        for (n, local) in mine.iter().enumerate() {
            let next = chain
                .get(n + 1)
                .map_or_else(|| quote!(__flow_p::None), |s| quote!(__flow_p::Some(#s)));
            expr = quote!(if #local.is_some() { #next } else { #expr });
        }
        pending.push(expr);
    }
    quote! {
        FlowState::#v { #(#fields: #locals,)* loops, .. } => {
            let pending = [#(#pending),*];
            __flow_p::Position::Join {
                step: #i,
                visit: __flow_visit(loops),
                pending: pending.into_iter().flatten().collect(),
            }
        }
    }
}

/// `Machine::merge`'s arms for join `i` when some branch is a chain: a step's output goes into
/// its field and the output of the step before it, which it took a copy of, is dropped; the
/// fork's output is dropped once every branch has begun.
fn chain_merges(g: &Gen<'_>, i: usize, chains: &[Vec<usize>]) -> Vec<TokenStream> {
    let v = g.variant(i);
    let steps = g.graph.chain_steps(i);
    let fields: Vec<_> = steps.iter().map(|&b| g.fn_ident(b)).collect();
    let locals: Vec<_> = (0..steps.len())
        .map(|n| format_ident!("__flow_f{}", n))
        .collect();
    let mut begun = Vec::new();
    let mut at = 0;
    for chain in chains {
        let mine = &locals[at..at + chain.len()];
        at += chain.len();
        begun.push(quote!((#(#mine.is_some())||*)));
    }
    let mut arms = Vec::new();
    let mut at = 0;
    for chain in chains {
        for (n, &b) in chain.iter().enumerate() {
            let bv = g.variant(b);
            let local = &locals[at + n];
            let drop_prev = n.checked_sub(1).map(|p| {
                let prev = &locals[at + p];
                quote!(*#prev = __flow_p::None;)
            });
            arms.push(quote! {
                (FlowState::#v { input: __flow_input, #(#fields: #locals,)* .. }, __flow_Branch::#bv(value)) => {
                    *#local = __flow_p::Some(value);
                    #drop_prev
                    if #(#begun)&&* {
                        *__flow_input = __flow_p::None;
                    }
                    __flow_p::Ok(())
                }
            });
        }
        at += chain.len();
    }
    arms
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
            let f = g.edge(*s, g.name(i));
            let kept = super::earlier::next_fields(g, i, *s);
            quote!(FlowState::#v { input: #f(#out), #kept loops })
        }
        Next::Fork { join } => {
            let v = g.variant(*join);
            let fields = g
                .graph
                .chain_steps(*join)
                .into_iter()
                .map(|b| g.fn_ident(b).clone());
            let kept = super::earlier::next_fields(g, i, *join);
            quote!(FlowState::#v { input: __flow_p::Some(#out), #( #fields: __flow_p::None, )* #kept loops })
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
                let kept = super::earlier::next_fields(g, i, arm.target);
                let go = quote!(FlowState::#target { input: #f(value), #kept loops });
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
                        let ex_kept = super::earlier::next_fields(g, i, bound.exhausted);
                        quote! {
                            #enum_name::#variant(value) => {
                                if loops.#counter >= #max {
                                    FlowState::#ex { input: #exf(#k::state::LoopExhausted::new(loops.#counter, value)), #ex_kept loops }
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
            pub fn run(ctx: &#k::state::Ctx<#deps>, input: #param) -> impl ::core::future::Future<Output = __flow_p::Result<#output, FlowError>> + ::core::marker::Send + '_ {
                <Self as #k::state::Workflow>::run(ctx, input)
            }
        };
    }
    quote! {
        pub fn run<'a>(ctx: &'a #k::state::Ctx<#deps>, input: #param) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = __flow_p::Result<#output, FlowError>> + ::core::marker::Send + 'a>> {
            let input = #convert;
            ::std::boxed::Box::pin(<Self as #k::state::Workflow>::run(ctx, input))
        }

        /// Runs like [`Workflow::run`], or continues the stored run under the context's run id
        /// from its latest checkpoint: the runtime's `Workflow::run_or_resume`.
        ///
        /// # Errors
        ///
        /// The first step that fails, or the runtime (a stopped or incompatible stored run).
        pub fn run_or_resume<'a>(ctx: &'a #k::state::Ctx<#deps>, input: #param) -> ::core::pin::Pin<::std::boxed::Box<dyn ::core::future::Future<Output = __flow_p::Result<#output, FlowError>> + ::core::marker::Send + 'a>> {
            let input = #convert;
            ::std::boxed::Box::pin(<Self as #k::state::Workflow>::run_or_resume(ctx, input))
        }
    }
}
