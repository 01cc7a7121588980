//! The typestate API: `Flow<S>`, zero-sized markers in `state`, and one method per step,
//! each bounded by a per-step trait whose `#[diagnostic::on_unimplemented]` explains why the
//! step cannot run in the current state.

use super::{Concat, Gen};
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let deps = g.deps();
    let output = Gen::output();
    let wf = g.wf.name.to_string();
    let entry = g.graph.entry;
    let entry_v = g.variant(entry);

    let mut markers = TokenStream::new();
    let mut impls = TokenStream::new();
    let mut methods = TokenStream::new();
    for i in 0..g.wf.steps.len() {
        let (m, imp, method) = step(g, i);
        markers.concat(m);
        impls.concat(imp);
        methods.concat(method);
    }
    let route_enums = route_handles(g);
    let (entry_param, entry_convert) = g.entry_input();
    let entry_check = entry_input_check(g);
    // The stand-ins of plain steps share one `impl<T> StepFuture<T>` block.
    let (mut unawaited_items, mut unawaited_methods) = (TokenStream::new(), TokenStream::new());
    for i in 0..g.wf.steps.len() {
        let (items, method) = unawaited(g, i);
        unawaited_items.concat(items);
        unawaited_methods.concat(method);
    }
    let flow_doc = format!(
        "A run of workflow `{wf}` driven one step at a time. `S`, a marker from [`state`], says which step runs next; each step is a method that consumes the `Flow` and returns the next one, so calling a step out of order does not compile.\n\nStart with [`Flow::new`]; the run ends when an exit step's method returns the output. A `Flow` does not store checkpoints: [`Workflow::run`] does. Hand a `Flow` to [`Workflow::resume`] with [`Flow::into_state`]."
    );
    quote! {
        /// Typestate markers for [`Flow`]: `Flow<state::Search>` is a run whose next step is
        /// `search`. They are never constructed.
        pub mod state {
            #markers
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub trait __flow_Marker {
            /// The data a run in this state carries.
            type Data: ::core::marker::Send + 'static;
            /// The earlier outputs (`#[from]`) a run in this state keeps for later steps.
            type Kept: ::core::marker::Send + 'static;
            /// Where the run is, for `Debug`.
            const AT: &'static str;
            /// The same position as a `FlowState`.
            fn into_state(data: Self::Data, kept: Self::Kept, loops: Loops) -> FlowState;
        }

        #impls

        #[doc = #flow_doc]
        pub struct Flow<S: __flow_Marker> {
            ctx: #k::state::Ctx<#deps>,
            data: <S as __flow_Marker>::Data,
            kept: <S as __flow_Marker>::Kept,
            loops: Loops,
            attempt: u32,
        }

        impl<S: __flow_Marker> ::core::fmt::Debug for Flow<S> {
            // The data stays out: it may hold anything, credentials included.
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::write!(f, "Flow({} at `{}`, run {})", NAME, <S as __flow_Marker>::AT, self.ctx.run_id())
            }
        }

        #entry_check

        impl Flow<state::#entry_v> {
            /// A new run at the entry step, which takes the raw `input`.
            #[must_use]
            pub fn new(ctx: &#k::state::Ctx<#deps>, input: #entry_param) -> Self {
                Self {
                    ctx: ::core::clone::Clone::clone(ctx),
                    data: #entry_convert,
                    kept: (),
                    loops: ::core::default::Default::default(),
                    attempt: __flow_p::first_attempt(ctx),
                }
            }
        }

        #[allow(clippy::future_not_send, clippy::missing_errors_doc)]
        impl<S: __flow_Marker> Flow<S> {
            /// The data the next step receives.
            #[must_use]
            pub fn input(&self) -> &<S as __flow_Marker>::Data {
                &self.data
            }

            /// The run's context.
            #[must_use]
            pub fn ctx(&self) -> &#k::state::Ctx<#deps> {
                &self.ctx
            }

            /// The loop counters.
            #[must_use]
            pub fn loops(&self) -> Loops {
                self.loops
            }

            /// The same position as a [`FlowState`], to store or to hand to [`Workflow::resume`].
            #[must_use]
            pub fn into_state(self) -> FlowState {
                <S as __flow_Marker>::into_state(self.data, self.kept, self.loops)
            }

            // The method of a step that carries no earlier outputs: runs step `step` through
            // its adapter `call`, and `feed` (the edge's conversion) makes the next `Flow`.
            // The closure returns the workflow's `FlowError`, as large as the user's errors.
            #[inline]
            #[allow(clippy::result_large_err)]
            fn __flow_then<C, T, N, F>(self, step: usize, call: C, feed: F) -> StepFuture<__flow_p::Result<Flow<N>, FlowError>>
            where
                S: __flow_Marker<Kept = ()>,
                C: for<'a> __flow_p::StepCall<'a, #deps, <S as __flow_Marker>::Data, (), T, FlowError> + ::core::marker::Send + 'static,
                T: ::core::marker::Send + 'static,
                N: __flow_Marker<Kept = ()>,
                F: ::core::ops::FnOnce(T) -> <N as __flow_Marker>::Data + ::core::marker::Send + 'static,
            {
                let Self { ctx, data, kept, loops, attempt } = self;
                let visit = __flow_visit(&loops);
                StepFuture(__flow_p::flow_step::<Workflow, _, _, _, _, _, _>(ctx, step, attempt, visit, data, kept, call, move |ctx, (), out| {
                    __flow_p::Ok(Flow { ctx, data: feed(out), kept: (), loops, attempt: 1 })
                }))
            }

            // The same for an exit step: `finish` makes the run's output.
            // The closure returns the workflow's `FlowError`, as large as the user's errors.
            #[inline]
            #[allow(clippy::result_large_err)]
            fn __flow_exit<C, T, F>(self, step: usize, call: C, finish: F) -> StepFuture<__flow_p::Result<#output, FlowError>>
            where
                S: __flow_Marker<Kept = ()>,
                C: for<'a> __flow_p::StepCall<'a, #deps, <S as __flow_Marker>::Data, (), T, FlowError> + ::core::marker::Send + 'static,
                T: ::core::marker::Send + 'static,
                F: ::core::ops::FnOnce(T) -> #output + ::core::marker::Send + 'static,
            {
                let Self { ctx, data, kept, loops, attempt } = self;
                let visit = __flow_visit(&loops);
                StepFuture(__flow_p::flow_step::<Workflow, _, _, _, _, _, _>(ctx, step, attempt, visit, data, kept, call, move |_, (), out| {
                    __flow_p::Ok(finish(out))
                }))
            }

            #methods
        }

        #route_enums

        /// The future a step method of [`Flow`] returns: `.await` it for the run at its next
        /// step (or the output, after an exit step).
        #[must_use = "a step runs only when its future is awaited: add `.await`"]
        pub struct StepFuture<T>(__flow_p::StepFuture<T>);

        impl<T> ::core::future::Future for StepFuture<T> {
            type Output = T;
            #[inline]
            fn poll(mut self: ::core::pin::Pin<&mut Self>, cx: &mut ::core::task::Context<'_>) -> ::core::task::Poll<T> {
                ::core::future::Future::poll(::core::pin::Pin::as_mut(&mut self.0), cx)
            }
        }

        impl<T> ::core::fmt::Debug for StepFuture<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str("StepFuture")
            }
        }

        #unawaited_items
        #[doc(hidden)]
        #[allow(clippy::unused_self, missing_docs)]
        impl<T> StepFuture<T> {
            #unawaited_methods
        }
    }
}

impl Gen<'_> {
    /// The type of `input` in `Flow::new(ctx, input)` and `Workflow::run(ctx, input)`, and the
    /// expression that turns `input` into the entry step's input.
    pub(crate) fn entry_input(&self) -> (TokenStream, TokenStream) {
        let entry_in = self.inp(self.graph.entry);
        if entry_takes_valid(self) {
            (
                quote!(impl __flow_EntryInput),
                quote!(__flow_EntryInput::__flow_into(input)),
            )
        } else {
            (quote!(#entry_in), quote!(input))
        }
    }
}

/// Whether the entry step takes a `Valid<T>` as written.
pub(crate) fn entry_takes_valid(g: &Gen<'_>) -> bool {
    g.wf.steps[g.graph.entry].inputs.first().is_some_and(|input| {
        matches!(&input.ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Valid"))
    })
}

/// When the entry step takes `Valid<T>`, a raw `T` handed to `Flow::new` or `Workflow::run`
/// is reported as "validate first" (through this trait, which only the entry input
/// implements) rather than as a bare type mismatch.
pub(crate) fn entry_input_check(g: &Gen<'_>) -> TokenStream {
    if !entry_takes_valid(g) {
        return TokenStream::new();
    }
    let entry = g.graph.entry;
    let entry_in = g.inp(entry);
    let wf = g.wf.name.to_string();
    let ty = crate::syntax::type_text(&g.wf.steps[entry].inputs[0].ty);
    let message = format!(
        "workflow `{wf}` starts from a `{ty}`, not `{{Self}}`: validate the value first, `Valid::new(value)?`"
    );
    let note = format!(
        "`Valid::new` runs the type's garde rules and returns `Invalid` when one is broken; its entry step `{}` takes only validated input",
        g.name(entry)
    );
    quote! {
        #[diagnostic::on_unimplemented(message = #message, label = "not validated", note = #note)]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub trait __flow_EntryInput {
            fn __flow_into(self) -> #entry_in;
        }
        #[diagnostic::do_not_recommend]
        impl __flow_EntryInput for #entry_in {
            #[inline]
            fn __flow_into(self) -> #entry_in { self }
        }
    }
}

/// A method of `StepFuture` named after step `i`, so that `flow.validate().search()` (a step
/// called on the previous step's future) reports the missing `.await` through a trait that is
/// never implemented, instead of rustc's E0599 on the future's type. It returns what the
/// step's own method returns, so the rest of the chain adds no errors. Returns the items and,
/// for a step that is not a branch, the method of `impl<T> StepFuture<T>` (a branch's method has
/// an impl of its own).
fn unawaited(g: &Gen<'_>, i: usize) -> (TokenStream, TokenStream) {
    let name = g.name(i);
    let f = g.fn_ident(i);
    let awaited = format_ident!("__flow_awaited_{}", name);
    let message = format!(
        "`.{name}()` is called on the future of the step before it: add `.await?` first, `….await?.{name}()`"
    );
    let label = "this step's future was not awaited";
    let note = "each step method returns a `StepFuture`; awaiting it gives `Result<Flow<…>, FlowError>`, and `?` gives the `Flow` whose methods are the steps";
    // One generic body for every stand-in: no `unreachable!` (and its formatting) per step.
    let never = quote!(__flow_p::stand_in());
    let tr = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub trait #awaited {}
        // So that rustc's note says where the method does exist, not "this trait has no
        // implementations, consider adding one".
        #[diagnostic::do_not_recommend]
        impl<S: __flow_Marker> #awaited for Flow<S> {}
    };
    if let Role::Branch { .. } = &g.graph.roles[i] {
        let next = format_ident!("__flow_next_{}", name);
        let items = quote! {
            #tr
            impl<S: #next> StepFuture<__flow_p::Result<Flow<S>, FlowError>> {
                #[doc(hidden)]
                #[allow(clippy::unused_self)]
                pub fn #f(self) -> StepFuture<__flow_p::Result<Flow<<S as #next>::Next>, FlowError>>
                where
                    Self: #awaited,
                {
                    #never
                }
            }
        };
        (items, TokenStream::new())
    } else {
        let (ret, _) = handle(g, i);
        let method = quote! {
            pub fn #f(self) -> StepFuture<__flow_p::Result<#ret, FlowError>>
            where
                T: #awaited,
            {
                #never
            }
        };
        (tr, method)
    }
}

/// Marker, trait impls and method for step `i`.
fn step(g: &Gen<'_>, i: usize) -> (TokenStream, TokenStream, TokenStream) {
    let k = g.krate;
    let wf = g.wf.name.to_string();
    let name = g.name(i);
    let f = g.fn_ident(i);
    let v = g.variant(i);
    let call = quote::format_ident!("__flow_call_{}", g.fn_ident(i));

    let can = format_ident!("__flow_can_{}", name);
    let label = format!("`{name}` cannot run in this state");
    let note = "each step method consumes the `Flow` and returns it at the next step: run the step the state names first";
    let doc = format!("Runs step `{name}`.");
    match &g.graph.roles[i] {
        Role::Entry | Role::Single => {
            let input = g.inp(i);
            let message = format!(
                "`{name}` cannot run yet: workflow `{wf}` is at `{{Self}}`; {}",
                when(g, i)
            );
            let marker_doc = format!("`{name}` runs next.");
            let at = g.input_span(i, 0);
            let input_at = super::spanned(&input, at);
            let data_item = quote::quote_spanned!(at=> type Data = #input_at;);
            let marker = quote! {
                #[doc = #marker_doc]
                pub enum #v {}
            };
            let (ret, body) = handle(g, i);
            let kept_ty = super::earlier::kept_type(g, i);
            let kept_fields = super::earlier::fields(g, i);
            let kept_idx = (0..kept_fields.len()).map(syn::Index::from);
            let copy_self =
                super::earlier::copy_self(g, i, &super::earlier::nexts(g, i), &quote!(out));
            // A state that keeps nothing takes its `()` as a pattern: no unused variable.
            let into_state = if kept_fields.is_empty() {
                quote! {
                    fn into_state(input: #input, (): (), loops: Loops) -> FlowState {
                        FlowState::#v { input, loops }
                    }
                }
            } else {
                quote! {
                    fn into_state(data: #input, kept: #kept_ty, loops: Loops) -> FlowState {
                        FlowState::#v { input: data, #( #kept_fields: kept.#kept_idx, )* loops }
                    }
                }
            };
            let impls = quote! {
                impl __flow_Marker for state::#v {
                    #data_item
                    type Kept = #kept_ty;
                    const AT: &'static str = #name;
                    #into_state
                }
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                pub trait #can: __flow_Marker<Data = #input, Kept = #kept_ty> {}
                #[diagnostic::do_not_recommend]
                impl #can for state::#v {}
            };
            // No `async` block of its own: the runtime's generic `flow_step` runs the adapter.
            // A step that carries no earlier outputs into the next position hands `Flow`'s
            // generic `__flow_then` (or `__flow_exit`) its adapter and its edge's conversion,
            // both function items; otherwise a closure makes the result.
            let plain_next = match &g.graph.next[i] {
                Next::Exit => Some((quote!(__flow_exit), g.to_output(i))),
                Next::Step(s) if g.graph.carry[*s].is_empty() => {
                    Some((quote!(__flow_then), g.edge(*s, g.name(i))))
                }
                _ => None,
            };
            if let Some((helper, feed)) = plain_next.filter(|_| g.graph.carry[i].is_empty()) {
                let method = quote! {
                    #[doc = #doc]
                    pub fn #f(self) -> StepFuture<__flow_p::Result<#ret, FlowError>>
                    where
                        S: #can,
                    {
                        self.#helper(#i, #call, #feed)
                    }
                };
                return (marker, impls, method);
            }
            let method = quote! {
                #[doc = #doc]
                // The closure returns the workflow's `FlowError`, as large as the user's errors.
                #[allow(unused_variables, clippy::result_large_err)]
                pub fn #f(self) -> StepFuture<__flow_p::Result<#ret, FlowError>>
                where
                    S: #can,
                {
                    let Self { ctx, data: input, kept: __flow_kept, mut loops, attempt } = self;
                    let visit = __flow_visit(&loops);
                    StepFuture(__flow_p::flow_step::<Workflow, _, _, _, _, _, _>(ctx, #i, attempt, visit, input, __flow_kept, #call, move |ctx, __flow_kept, out| {
                        #copy_self
                        __flow_p::Ok(#body)
                    }))
                }
            };
            (marker, impls, method)
        }
        Role::Branch { join, slot } => {
            let Role::Join {
                fork,
                branches,
                chains,
            } = &g.graph.roles[*join]
            else {
                return Default::default();
            };
            if chains[*slot].len() > 1 {
                return chain_step(g, i);
            }
            let bounds = slot_bounds(g, *join);
            let jv = g.variant(*join);
            let (input, out) = (g.inp(i), g.out(i));
            let params: Vec<_> = branches.iter().map(|&b| g.variant(b)).collect();
            let mine = &params[*slot];
            let others: Vec<_> = params.iter().filter(|p| *p != mine).collect();
            let other_bounds: Vec<_> = bounds
                .iter()
                .enumerate()
                .filter(|(n, _)| n != slot)
                .map(|(_, b)| b)
                .collect();
            let before: Vec<_> = params
                .iter()
                .map(|p| {
                    if p == mine {
                        quote!(#k::state::Pending)
                    } else {
                        quote!(#p)
                    }
                })
                .collect();
            let after: Vec<_> = params
                .iter()
                .map(|p| {
                    if p == mine {
                        quote!(#k::state::Done)
                    } else {
                        quote!(#p)
                    }
                })
                .collect();
            let fields: Vec<_> = (0..params.len())
                .map(|n| {
                    let idx = syn::Index::from(n + 1);
                    if n == *slot {
                        quote!(out)
                    } else {
                        quote!(data.#idx)
                    }
                })
                .collect();
            let feed = g.edge(i, g.name(*fork));
            let clone_fn = g.clone_fn(*fork);
            let kept_ty = super::earlier::kept_type(g, *join);
            let message = format!(
                "`{name}` cannot run now: workflow `{wf}` is at `{{Self}}`; `{name}` is a branch of the fan-out after `{}` and runs once, while its slot is `Pending`",
                g.name(*fork)
            );
            // `Next` lives in a trait every marker implements, so that the method's return type
            // resolves in any state and a wrong state fails on `#can` (our message), not as
            // rustc's E0599.
            let next = format_ident!("__flow_next_{}", name);
            let identity = markers(g)
                .into_iter()
                .filter(|(_, _, owner)| *owner != Some(*join))
                .map(|(generics, ty, _)| quote!(impl #generics #next for #ty { type Next = #ty; }));
            let impls = quote! {
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                pub trait #next: __flow_Marker {
                    type Next: __flow_Marker;
                }
                impl<#(#params: #bounds),*> #next for state::#jv<#(#params),*> {
                    type Next = state::#jv<#(#after),*>;
                }
                #(#identity)*
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                pub trait #can: #next {
                    fn input(data: &Self::Data) -> #input;
                    fn kept(kept: &Self::Kept) -> &#kept_ty;
                    fn finish(data: Self::Data, kept: Self::Kept, out: #out) -> (<<Self as #next>::Next as __flow_Marker>::Data, <<Self as #next>::Next as __flow_Marker>::Kept);
                }
                #[diagnostic::do_not_recommend]
                impl<#(#others: #other_bounds),*> #can for state::#jv<#(#before),*> {
                    #[inline]
                    fn input(data: &Self::Data) -> #input {
                        #feed(#clone_fn(&data.0))
                    }
                    #[inline]
                    fn kept(kept: &#kept_ty) -> &#kept_ty { kept }
                    #[inline]
                    fn finish(data: Self::Data, kept: #kept_ty, out: #out) -> (<<Self as #next>::Next as __flow_Marker>::Data, #kept_ty) {
                        ((data.0, #(#fields),*), kept)
                    }
                }
            };
            let method = quote! {
                #[doc = #doc]
                pub fn #f(self) -> StepFuture<__flow_p::Result<Flow<<S as #next>::Next>, FlowError>>
                where
                    S: #next + #can,
                {
                    StepFuture(::std::boxed::Box::pin(async move {
                    let Self { ctx, data, kept, loops, attempt } = self;
                    let input = <S as #can>::input(&data);
                    let kept_ref: &#kept_ty = <S as #can>::kept(&kept);
                    let out = __flow_p::step_alone(&ctx, &<Workflow as __flow_p::Machine>::GRAPH, #i, attempt, __flow_visit(&loops), |run, event| #call(&ctx, run, input, kept_ref, event)).await?;
                    let (data, kept) = <S as #can>::finish(data, kept, out);
                    __flow_p::Ok(Flow { ctx, data, kept, loops, attempt: 1 })
                    }))
                }
            };
            (TokenStream::new(), impls, method)
        }
        Role::Join {
            fork,
            branches,
            chains,
        } => {
            let params: Vec<_> = branches.iter().map(|&b| g.variant(b)).collect();
            let bounds = slot_bounds(g, i);
            let fork_out = g.out(*fork);
            let outs: Vec<_> = branches.iter().map(|&b| g.out(b)).collect();
            let fields: Vec<_> = branches.iter().map(|&b| g.fn_ident(b)).collect();
            let ins: Vec<_> = (0..branches.len()).map(|n| g.inp_k(i, n)).collect();
            let idx: Vec<_> = (0..branches.len())
                .map(|n| syn::Index::from(n + 1))
                .collect();
            let dones: Vec<_> = branches
                .iter()
                .map(|&b| format_ident!("__flow_done_{}_{}", name, g.name(b)))
                .collect();
            let feeds: Vec<_> = branches.iter().map(|&b| g.edge(i, g.name(b))).collect();
            let done_msgs: Vec<_> = chains
                .iter()
                .map(|chain| {
                    let b = g.name(chain[chain.len() - 1]);
                    if chain.len() == 1 {
                        format!(
                            "`{name}` cannot run yet: branch `{b}` has not run; call `.{b}()` first"
                        )
                    } else {
                        format!(
                            "`{name}` cannot run yet: branch `{}` is at `{{Self}}`, not done; call its steps up to `.{b}()` first",
                            chain_text(g, chain)
                        )
                    }
                })
                .collect();
            let done_labels: Vec<_> = chains
                .iter()
                .map(|chain| {
                    if chain.len() == 1 {
                        format!("`{}` is still `Pending`", g.name(chain[0]))
                    } else {
                        format!(
                            "branch `{}` is at `{{Self}}`: that step runs next in it",
                            g.name(chain[0])
                        )
                    }
                })
                .collect();
            let (chain_markers, chain_impls) = chain_slots(g, i);
            let message = format!(
                "`{name}` cannot run yet: workflow `{wf}` is at `{{Self}}`; `{name}` runs after the fan-out after `{}`, once all of {} have run",
                g.name(*fork),
                branches
                    .iter()
                    .map(|&b| format!("`{}`", g.name(b)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let marker_doc = format!(
                "The fan-out after `{}`: each parameter is `Pending` until its branch has run, then `Done`; `{name}` runs when all are `Done`.",
                g.name(*fork)
            );
            let marker_doc = if chains.iter().all(|c| c.len() == 1) {
                marker_doc
            } else {
                format!(
                    "The fan-out after `{}`: each parameter is where its branch is: `Pending` (a branch of one step) or the marker of the step that runs next in it, then `Done` once its last step has run; `{name}` runs when all are `Done`.",
                    g.name(*fork)
                )
            };
            let marker = quote! {
                #chain_markers
                #[doc = #marker_doc]
                pub struct #v<#(#params),*>(::core::marker::PhantomData<fn() -> (#(#params,)*)>);
                impl<#(#params),*> ::core::fmt::Debug for #v<#(#params),*> {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(::core::stringify!(#v))
                    }
                }
            };
            let (ret, body) = handle(g, i);
            let at = format!("{name} (fan-out)");
            let data_item = super::respan(
                quote!(type Data = (#fork_out, #(<#params as __flow_p::Slot>::Of<#outs>,)*);),
                g.input_span(i, 0),
            );
            let kept_ty = super::earlier::kept_type(g, i);
            let kept_fields = super::earlier::fields(g, i);
            let kept_idx = (0..kept_fields.len()).map(syn::Index::from);
            let into_state = if chains.iter().all(|c| c.len() == 1) {
                quote! {
                    FlowState::#v {
                        input: __flow_p::Some(data.0),
                        #( #fields: <#params as __flow_p::Slot>::into_option(data.#idx), )*
                        #( #kept_fields: kept.#kept_idx, )*
                        loops,
                    }
                }
            } else {
                let mut lets = TokenStream::new();
                let mut inits = TokenStream::new();
                for (n, chain) in chains.iter().enumerate() {
                    let (p, b, ix) = (&params[n], &bounds[n], &idx[n]);
                    if chain.len() == 1 {
                        let f = g.fn_ident(chain[0]);
                        inits.concat(quote!(#f: <#p as __flow_p::Slot>::into_option(data.#ix),));
                        continue;
                    }
                    let locals: Vec<_> = chain
                        .iter()
                        .map(|&c| format_ident!("__flow_f_{}", g.name(c)))
                        .collect();
                    let fs = chain.iter().map(|&c| g.fn_ident(c));
                    lets.concat(quote!(let (#(#locals,)*) = <#p as #b>::fields(data.#ix);));
                    inits.concat(quote!(#(#fs: #locals,)*));
                }
                quote! {
                    #lets
                    FlowState::#v {
                        input: __flow_p::Some(data.0),
                        #inits
                        #( #kept_fields: kept.#kept_idx, )*
                        loops,
                    }
                }
            };
            let impls = quote! {

                #chain_impls
                impl<#(#params: #bounds),*> __flow_Marker for state::#v<#(#params),*> {
                    #data_item
                    type Kept = #kept_ty;
                    const AT: &'static str = #at;
                    #[allow(unused_variables)]
                    fn into_state(data: Self::Data, kept: #kept_ty, loops: Loops) -> FlowState {
                        #into_state
                    }
                }
                #(
                    #[diagnostic::on_unimplemented(message = #done_msgs, label = #done_labels, note = #note)]
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    pub trait #dones: #bounds {
                        fn take(value: Self::Of<#outs>) -> #outs;
                    }
                    impl #dones for #k::state::Done {
                        #[inline]
                        fn take(value: #outs) -> #outs { value }
                    }
                )*
                #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                pub trait #can: __flow_Marker {
                    fn take(data: Self::Data, kept: Self::Kept) -> ((#(#ins,)*), #kept_ty);
                }
                impl<#(#params: #dones),*> #can for state::#v<#(#params),*> {
                    #[inline]
                    fn take(data: Self::Data, kept: #kept_ty) -> ((#(#ins,)*), #kept_ty) {
                        ((#( #feeds(<#params as #dones>::take(data.#idx)), )*), kept)
                    }
                }
            };
            let ins_vars: Vec<_> = (0..branches.len())
                .map(|n| format_ident!("in{}", n))
                .collect();
            let nexts = super::earlier::nexts(g, i);
            let copy_self = super::earlier::copy_self(g, i, &nexts, &quote!(out));
            let copy_branches = super::earlier::copy_branches(g, i, &nexts, &ins_vars);
            let method = quote! {
                #[doc = #doc]
                pub fn #f(self) -> StepFuture<__flow_p::Result<#ret, FlowError>>
                where
                    S: #can,
                {
                    let Self { ctx, data, kept, mut loops, attempt } = self;
                    let ((#(#ins_vars,)*), __flow_kept) = <S as #can>::take(data, kept);
                    StepFuture(::std::boxed::Box::pin(async move {
                    #copy_branches
                    let out = __flow_p::step_alone(&ctx, &<Workflow as __flow_p::Machine>::GRAPH, #i, attempt, __flow_visit(&loops), |run, event| #call(&ctx, run, #(#ins_vars,)* &__flow_kept, event)).await?;
                    #copy_self
                    __flow_p::Ok(#body)
                    }))
                }
            };
            (marker, impls, method)
        }
    }
}

/// What must happen before step `i` can run, for its out-of-order message.
fn when(g: &Gen<'_>, i: usize) -> String {
    let name = g.name(i);
    if matches!(g.graph.roles[i], Role::Entry) {
        return format!("`{name}` is the entry step: it runs first, on a new `Flow::new(…)`");
    }
    let mut reasons = Vec::new();
    for (r, next) in g.graph.next.iter().enumerate() {
        match next {
            Next::Step(s) if *s == i => {
                reasons.push(format!("`{name}` runs after `{}`", g.name(r)));
            }
            Next::Route { arms, .. } => {
                for arm in arms {
                    if arm.target == i && !arm.back {
                        reasons.push(format!("`{name}` runs when `{}` routes to it", g.name(r)));
                    } else if arm.target == i {
                        reasons.push(format!(
                            "`{name}` runs again when `{}` routes back to it",
                            g.name(r)
                        ));
                    }
                    if arm.bound.as_ref().is_some_and(|b| b.exhausted == i) {
                        reasons.push(format!(
                            "`{name}` runs when `{}` exhausts its loop",
                            g.name(r)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    reasons.dedup();
    reasons.join(", or ")
}

/// The return type of step `i`'s method and the expression building it from `out`, with
/// `ctx` and `loops` in scope.
fn handle(g: &Gen<'_>, i: usize) -> (TokenStream, TokenStream) {
    let k = g.krate;
    match &g.graph.next[i] {
        Next::Exit => {
            let output = Gen::output();
            let f = g.to_output(i);
            (quote!(#output), quote!(#f(out)))
        }
        Next::Step(s) => {
            let v = g.variant(*s);
            let f = g.edge(*s, g.name(i));
            let kept = super::earlier::next_kept(g, i, *s);
            (
                quote!(Flow<state::#v>),
                quote!(Flow { ctx, data: #f(out), kept: #kept, loops, attempt: 1 }),
            )
        }
        Next::Fork { join } => {
            let v = g.variant(*join);
            let Role::Join { chains, .. } = &g.graph.roles[*join] else {
                return Default::default();
            };
            // Each branch starts `Pending`, or, for a chain, at its first step's marker.
            let pending = chains.iter().map(|chain| {
                if chain.len() == 1 {
                    quote!(#k::state::Pending)
                } else {
                    let m = g.variant(chain[0]);
                    quote!(state::#m)
                }
            });
            let units = chains.iter().map(|_| quote!(()));
            let kept = super::earlier::next_kept(g, i, *join);
            (
                quote!(Flow<state::#v<#(#pending),*>>),
                quote!(Flow { ctx, data: (out, #(#units,)*), kept: #kept, loops, attempt: 1 }),
            )
        }
        Next::Join { .. } => Default::default(),
        Next::Route { enum_index, arms } => {
            let route = &g.wf.enums[*enum_index];
            let enum_name = &route.name;
            let handles = format_ident!("{}Flow", enum_name);
            let arms = arms.iter().map(|arm| {
                let variant = &route.variants[arm.variant].name;
                let f = g.route_edge(i, variant);
                let kept = super::earlier::next_kept(g, i, arm.target);
                let go = quote!(#handles::#variant(Flow { ctx, data: #f(value), kept: #kept, loops, attempt: 1 }));
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
                        let ex_variant = format_ident!("{}Exhausted", variant);
                        let exf = g.exhaust_edge(i, variant);
                        let ex_kept = super::earlier::next_kept(g, i, bound.exhausted);
                        quote! {
                            #enum_name::#variant(value) => {
                                if loops.#counter >= #max {
                                    #handles::#ex_variant(Flow {
                                        ctx,
                                        data: #exf(#k::state::LoopExhausted::new(loops.#counter, value)),
                                        kept: #ex_kept,
                                        loops,
                                        attempt: 1,
                                    })
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
            (quote!(#handles), quote!(match #routes(out) { #(#arms)* }))
        }
    }
}

/// `EnumFlow`: what a routing step's method returns, one variant per route.
fn route_handles(g: &Gen<'_>) -> TokenStream {
    let mut out = TokenStream::new();
    // Routers that share an enum (converging on the same steps) share its handles: the routes,
    // their targets and bounds are the enum's.
    let mut done: Vec<usize> = Vec::new();
    for (r, next) in g.graph.next.iter().enumerate() {
        let Next::Route { enum_index, arms } = next else {
            continue;
        };
        if done.contains(enum_index) {
            continue;
        }
        done.push(*enum_index);
        let route = &g.wf.enums[*enum_index];
        let handles = format_ident!("{}Flow", route.name);
        let doc = format!(
            "Where step `{}` sent the run: one variant per route of [`{}`], each holding the run at the step it leads to. `match` it: every route must be handled.",
            g.name(r),
            route.name
        );
        let mut variants = TokenStream::new();
        for arm in arms {
            let variant = &route.variants[arm.variant].name;
            let target = g.variant(arm.target);
            let vdoc = format!(
                "`{}::{variant}`: the run continues at `{}`.",
                route.name,
                g.name(arm.target)
            );
            variants.concat(quote!(#[doc = #vdoc] #variant(Flow<state::#target>),));
            if let Some(bound) = &arm.bound {
                let ex_variant = format_ident!("{}Exhausted", variant);
                let ex = g.variant(bound.exhausted);
                let edoc = format!(
                    "`{}::{variant}` was taken more than {} times: the run continues at `{}`.",
                    route.name,
                    bound.max,
                    g.name(bound.exhausted)
                );
                variants.concat(quote!(#[doc = #edoc] #ex_variant(Flow<state::#ex>),));
            }
        }
        out.concat(quote! {
            #[doc = #doc]
            #[derive(::core::fmt::Debug)]
            #[must_use]
            pub enum #handles {
                #variants
            }
        });
        out.concat(unmatched(g, &handles, &route.name, arms));
    }
    out
}

/// Methods of `EnumFlow` named after the steps its routes lead to, so that
/// `routed.offers()` (a step called before matching where the run went) says to `match`
/// first, instead of rustc's E0599 and its suggestion to call the variant `Offers` as a method.
/// The bound is higher-ranked so that rustc checks it at the call, not at the definition.
fn unmatched(
    g: &Gen<'_>,
    handles: &syn::Ident,
    enum_name: &syn::Ident,
    arms: &[crate::model::Arm],
) -> TokenStream {
    let route = g.wf.enums.iter().find(|e| e.name == *enum_name);
    let mut seen: Vec<usize> = Vec::new();
    let mut out = TokenStream::new();
    for arm in arms {
        let Some(route) = route else { break };
        let variant = &route.variants[arm.variant].name;
        let mut targets = vec![(arm.target, variant.clone())];
        if let Some(bound) = &arm.bound {
            targets.push((bound.exhausted, format_ident!("{}Exhausted", variant)));
        }
        for (target, variant) in targets {
            if seen.contains(&target)
                || !matches!(g.graph.roles[target], Role::Entry | Role::Single)
            {
                continue;
            }
            seen.push(target);
            let name = g.name(target);
            let f = g.fn_ident(target);
            let (ret, _) = handle(g, target);
            let tr = format_ident!("__flow_matched_{}_{}", handles, name);
            let message = format!(
                "`.{name}()` is called on `{handles}`, which says where the run went: `match` it first, `{handles}::{variant}(flow) => flow.{name}().await`"
            );
            let note = format!(
                "each variant of `{handles}` holds the run at the step its route leads to; every variant must be handled"
            );
            out.concat(quote! {
                #[diagnostic::on_unimplemented(message = #message, label = "not matched yet", note = #note)]
                #[doc(hidden)]
                #[allow(non_camel_case_types)]
                pub trait #tr {}
                #[diagnostic::do_not_recommend]
                impl<S: __flow_Marker> #tr for Flow<S> {}
                impl #handles {
                    #[doc(hidden)]
                    #[allow(clippy::unused_self)]
                    pub fn #f(self) -> StepFuture<__flow_p::Result<#ret, FlowError>>
                    where
                        for<'a> &'a #handles: #tr,
                    {
                        __flow_p::stand_in()
                    }
                }
            });
        }
    }
    out
}

/// Every marker type: its impl generics, its type, and the join it belongs to (if any).
fn markers(g: &Gen<'_>) -> Vec<(TokenStream, TokenStream, Option<usize>)> {
    let mut out = Vec::new();
    for (i, role) in g.graph.roles.iter().enumerate() {
        let v = g.variant(i);
        match role {
            Role::Entry | Role::Single => out.push((quote!(), quote!(state::#v), None)),
            Role::Join { branches, .. } => {
                let params: Vec<_> = branches.iter().map(|&b| g.variant(b)).collect();
                let bounds = slot_bounds(g, i);
                out.push((
                    quote!(<#(#params: #bounds),*>),
                    quote!(state::#v<#(#params),*>),
                    Some(i),
                ));
            }
            Role::Branch { .. } => {}
        }
    }
    out
}

/// The bound of each type parameter of join `join`'s marker: `Slot` for a branch of one step,
/// the branch's own slot trait (`__flow_slot_<join>_<last>`) for a chain.
fn slot_bounds(g: &Gen<'_>, join: usize) -> Vec<TokenStream> {
    let Role::Join { chains, .. } = &g.graph.roles[join] else {
        return Vec::new();
    };
    chains
        .iter()
        .map(|chain| {
            if chain.len() == 1 {
                quote!(__flow_p::Slot)
            } else {
                let t = slot_trait(g, join, chain);
                quote!(#t)
            }
        })
        .collect()
}

fn slot_trait(g: &Gen<'_>, join: usize, chain: &[usize]) -> syn::Ident {
    format_ident!(
        "__flow_slot_{}_{}",
        g.name(join),
        g.name(chain[chain.len() - 1])
    )
}

/// `a → b → c`: a branch's steps, for messages.
fn chain_text(g: &Gen<'_>, chain: &[usize]) -> String {
    chain
        .iter()
        .map(|&c| g.name(c))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// For each branch of join `join` that is a chain: a marker per step (`state::Summarise`: that
/// step runs next in its branch), their `Slot` impls (a marker's slot holds the output of the
/// step before it), and the branch's slot trait, which turns the slot into the state's fields
/// (one per step, only the latest output kept).
fn chain_slots(g: &Gen<'_>, join: usize) -> (TokenStream, TokenStream) {
    let k = g.krate;
    let Role::Join { fork, chains, .. } = &g.graph.roles[join] else {
        return Default::default();
    };
    let mut markers = TokenStream::new();
    let mut impls = TokenStream::new();
    for chain in chains.iter().filter(|c| c.len() > 1) {
        let tr = slot_trait(g, join, chain);
        let last = chain[chain.len() - 1];
        let tail_out = g.out(last);
        let outs: Vec<_> = chain.iter().map(|&c| g.out(c)).collect();
        let none = quote!(__flow_p::None);
        let some = quote!(__flow_p::Some(value));
        let fields_at = |filled: Option<usize>| {
            let values = (0..chain.len()).map(|n| {
                if Some(n) == filled {
                    some.clone()
                } else {
                    none.clone()
                }
            });
            quote!((#(#values,)*))
        };
        let doc = format!(
            "Where branch `{}` of the fan-out after `{}` is, as the fields of `FlowState`.",
            chain_text(g, chain),
            g.name(*fork)
        );
        impls.concat(quote! {
            #[doc = #doc]
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            pub trait #tr: __flow_p::Slot {
                fn fields(value: Self::Of<#tail_out>) -> (#(__flow_p::Option<#outs>,)*);
            }
        });
        for (n, &c) in chain.iter().enumerate() {
            let m = g.variant(c);
            let doc = if n == 0 {
                format!(
                    "`{}` runs next in branch `{}` of the fan-out after `{}`: the branch has not begun.",
                    g.name(c),
                    chain_text(g, chain),
                    g.name(*fork)
                )
            } else {
                format!(
                    "`{}` runs next in branch `{}` of the fan-out after `{}`, on the output of `{}`.",
                    g.name(c),
                    chain_text(g, chain),
                    g.name(*fork),
                    g.name(chain[n - 1])
                )
            };
            markers.concat(quote! {
                #[doc = #doc]
                pub enum #m {}
            });
            let (of, value, fields) = if n == 0 {
                (quote!(()), quote!(()), fields_at(None))
            } else {
                let o = &outs[n - 1];
                (quote!(#o), quote!(value), fields_at(Some(n - 1)))
            };
            impls.concat(quote! {
                impl __flow_p::Slot for state::#m {
                    type Of<T: ::core::marker::Send + 'static> = #of;
                    #[inline]
                    fn into_option<T: ::core::marker::Send + 'static>(_: #of) -> __flow_p::Option<T> {
                        __flow_p::None
                    }
                }
                impl #tr for state::#m {
                    #[inline]
                    #[allow(unused_variables)]
                    fn fields(#value: #of) -> (#(__flow_p::Option<#outs>,)*) { #fields }
                }
            });
        }
        let done = fields_at(Some(chain.len() - 1));
        impls.concat(quote! {
            impl #tr for #k::state::Done {
                #[inline]
                fn fields(value: #tail_out) -> (#(__flow_p::Option<#outs>,)*) { #done }
            }
        });
    }
    (markers, impls)
}

/// Marker, trait impls and method for step `i`, a step of a branch that is a chain: its
/// method moves the branch's slot from this step's marker to the next step's (or `Done`).
fn chain_step(g: &Gen<'_>, i: usize) -> (TokenStream, TokenStream, TokenStream) {
    let k = g.krate;
    let wf = g.wf.name.to_string();
    let name = g.name(i);
    let f = g.fn_ident(i);
    let call = format_ident!("__flow_call_{}", g.fn_ident(i));
    let Some((join, chain, pos)) = g.graph.chain(i) else {
        return Default::default();
    };
    let Role::Join {
        fork,
        branches,
        chains,
    } = &g.graph.roles[join]
    else {
        return Default::default();
    };
    let Some(slot) = chains.iter().position(|c| c.contains(&i)) else {
        return Default::default();
    };
    let jv = g.variant(join);
    let (input, out) = (g.inp(i), g.out(i));
    let fork_out = g.out(*fork);
    let params: Vec<_> = branches.iter().map(|&b| g.variant(b)).collect();
    let bounds = slot_bounds(g, join);
    let outs: Vec<_> = branches.iter().map(|&b| g.out(b)).collect();
    let me = g.variant(i);
    let at = |marker: TokenStream| -> Vec<TokenStream> {
        params
            .iter()
            .enumerate()
            .map(|(n, p)| {
                if n == slot {
                    marker.clone()
                } else {
                    quote!(#p)
                }
            })
            .collect()
    };
    let before = at(quote!(state::#me));
    let after = at(chain.get(pos + 1).map_or_else(
        || quote!(#k::state::Done),
        |&c| {
            let m = g.variant(c);
            quote!(state::#m)
        },
    ));
    let held = at(quote!(#k::state::Pending));
    let others: Vec<_> = params
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != slot)
        .map(|(_, p)| p)
        .collect();
    let other_bounds: Vec<_> = bounds
        .iter()
        .enumerate()
        .filter(|(n, _)| *n != slot)
        .map(|(_, b)| b)
        .collect();
    let idx: Vec<_> = (0..params.len()).map(|n| syn::Index::from(n + 1)).collect();
    let hold_values: Vec<_> = idx
        .iter()
        .enumerate()
        .map(|(n, ix)| {
            if n == slot {
                quote!(())
            } else {
                quote!(data.#ix)
            }
        })
        .collect();
    let next_values: Vec<_> = idx
        .iter()
        .enumerate()
        .map(|(n, ix)| {
            if n == slot {
                quote!(out)
            } else {
                quote!(hold.#ix)
            }
        })
        .collect();
    let take_input = if pos == 0 {
        let feed = g.edge(i, g.name(*fork));
        let clone_fn = g.clone_fn(*fork);
        quote!(#feed(#clone_fn(&data.0)))
    } else {
        let slot_ix = &idx[slot];
        let feed = g.edge(i, g.name(chain[pos - 1]));
        quote!(#feed(data.#slot_ix))
    };
    let kept_ty = super::earlier::kept_type(g, join);
    let label = format!("`{name}` cannot run in this state");
    let note = "each step method consumes the `Flow` and returns it at the next step: run the step the state names first";
    let when = if pos == 0 {
        "first in it".to_owned()
    } else {
        format!("after `{}`", g.name(chain[pos - 1]))
    };
    let message = format!(
        "`{name}` cannot run now: workflow `{wf}` is at `{{Self}}`; `{name}` is a step of branch `{}` of the fan-out after `{}` and runs once, {when}, while that branch is at `{me}`",
        chain_text(g, chain),
        g.name(*fork)
    );
    let next = format_ident!("__flow_next_{}", name);
    let can = format_ident!("__flow_can_{}", name);
    let identity = markers(g)
        .into_iter()
        .filter(|(_, _, owner)| *owner != Some(join))
        .map(|(generics, ty, _)| quote!(impl #generics #next for #ty { type Next = #ty; }));
    let impls = quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub trait #next: __flow_Marker {
            type Next: __flow_Marker;
        }
        impl<#(#params: #bounds),*> #next for state::#jv<#(#params),*> {
            type Next = state::#jv<#(#after),*>;
        }
        #(#identity)*
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        pub trait #can: #next {
            type Hold: ::core::marker::Send;
            fn input(data: Self::Data) -> (#input, Self::Hold);
            fn kept(kept: &Self::Kept) -> &#kept_ty;
            fn finish(hold: Self::Hold, kept: Self::Kept, out: #out) -> (<<Self as #next>::Next as __flow_Marker>::Data, <<Self as #next>::Next as __flow_Marker>::Kept);
        }
        #[diagnostic::do_not_recommend]
        impl<#(#others: #other_bounds),*> #can for state::#jv<#(#before),*> {
            type Hold = (#fork_out, #(<#held as __flow_p::Slot>::Of<#outs>,)*);
            #[inline]
            fn input(data: Self::Data) -> (#input, Self::Hold) {
                let input = #take_input;
                (input, (data.0, #(#hold_values,)*))
            }
            #[inline]
            fn kept(kept: &#kept_ty) -> &#kept_ty { kept }
            #[inline]
            fn finish(hold: Self::Hold, kept: #kept_ty, out: #out) -> (<<Self as #next>::Next as __flow_Marker>::Data, #kept_ty) {
                ((hold.0, #(#next_values,)*), kept)
            }
        }
    };
    let doc = format!("Runs step `{name}`.");
    let method = quote! {
        #[doc = #doc]
        pub fn #f(self) -> StepFuture<__flow_p::Result<Flow<<S as #next>::Next>, FlowError>>
        where
            S: #next + #can,
        {
            StepFuture(::std::boxed::Box::pin(async move {
            let Self { ctx, data, kept, loops, attempt } = self;
            let (input, hold) = <S as #can>::input(data);
            let kept_ref: &#kept_ty = <S as #can>::kept(&kept);
            let out = __flow_p::step_alone(&ctx, &<Workflow as __flow_p::Machine>::GRAPH, #i, attempt, __flow_visit(&loops), |run, event| #call(&ctx, run, input, kept_ref, event)).await?;
            let (data, kept) = <S as #can>::finish(hold, kept, out);
            __flow_p::Ok(Flow { ctx, data, kept, loops, attempt: 1 })
            }))
        }
    };
    (TokenStream::new(), impls, method)
}
