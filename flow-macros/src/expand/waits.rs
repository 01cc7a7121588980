//! Durable waits: steps that wait for a typed event (`event = T, timeout = …`) and steps that
//! return `Sleep<T>`. Generates the `EventOf<Workflow>` impls that make sending an event the
//! workflow does not declare a compile error, and the check that an event step's last
//! parameter is `Event<T>`.

use super::{Concat, Gen};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

impl Gen<'_> {
    /// The check that step `i`'s event parameter is `Event<T>`.
    pub(crate) fn event_check(&self, i: usize) -> syn::Ident {
        format_ident!("__flow_event_of_{}", self.name(i))
    }
}

/// The event's name: its type as written, without spaces (`Approval`, `events::Reply`).
pub(crate) fn event_name(ty: &syn::Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let k = g.krate;
    let wf = &g.wf.name;
    let mut out = TokenStream::new();
    let mut declared: Vec<String> = Vec::new();
    for (i, step) in g.wf.steps.iter().enumerate() {
        let Some((ty, _)) = &step.event else { continue };
        let name = g.name(i);
        let event = event_name(ty);
        if !declared.contains(&event) {
            declared.push(event.clone());
            // Serde is checked here, once per event type and at the user's type, rather than
            // by `EventOf`'s supertraits (two errors for one missing derive).
            // The user's type keeps its own spans (a typo in it is reported once, where it is
            // written).
            let span = ty.span();
            let check = quote_spanned!(span=> (&&__flow_p::event_wait::Wait::<#ty>::new()).check());
            out.concat(quote! {
                #[diagnostic::do_not_recommend]
                impl __flow_p::DeclaredEvent<Workflow> for #ty {}
                impl #k::state::EventOf<Workflow> for #ty {
                    const NAME: &'static str = #event;
                }
                const _: () = {
                    #[allow(dead_code, unused_imports)]
                    fn __flow_event_serde() {
                        use __flow_p::event_wait::{CheckNothing as _, CheckSerde as _};
                        #check;
                    }
                };
            });
        }
        let tr = g.event_check(i);
        let message = format!(
            "step `{name}` waits for event `{event}`, so its last parameter is `Event<{event}>`, not `{{T}}`"
        );
        let note = format!(
            "workflow `{wf}` hands the step `Event::Received({event})`, or `Event::TimedOut` when the timeout passed first"
        );
        out.concat(quote! {
            #[diagnostic::on_unimplemented(message = #message, label = "the event parameter's type", note = #note)]
            #[allow(non_camel_case_types)]
            trait #tr<T> { fn feed(self) -> T; }
            impl<T> #tr<T> for T {
                #[inline]
                fn feed(self) -> T { self }
            }
        });
    }
    out
}

/// The span of step `i`'s event parameter, to point type errors at it.
pub(crate) fn event_param_span(g: &Gen<'_>, i: usize) -> proc_macro2::Span {
    g.wf.steps[i]
        .inputs
        .get(1)
        .map_or_else(proc_macro2::Span::call_site, |input| input.ty.span())
}
