//! Step signatures: `async fn`, no `self` or generics, `Result<T, E>` with a sendable error, data
//! by value, a context when tools are declared, and as many data parameters as the step's role
//! takes.

use crate::error::Errors;
use crate::model::{Generics, Graph, Returns, Role, Step, Workflow};
use crate::naming::pascal_case;

/// Each step is an `async fn` without `self` or generics, returns `Result<T, E>`, and takes
/// its data parameters by value. Runs each rule below on one step, then the next step, so the
/// errors come in the order of the steps.
pub(super) fn check_signatures(wf: &Workflow, errors: &mut Errors) {
    for step in &wf.steps {
        check_async(step, errors);
        check_no_receiver(step, errors);
        check_generics(wf, step, errors);
        check_returns_result(step, errors);
        check_sendable_error(step, errors);
        check_has_return(step, errors);
        check_data_by_value(step, errors);
        check_concrete_types(step, errors);
        check_tools_take_ctx(wf, step, errors);
        check_tools_marker(wf, step, errors);
        check_workers_place(step, errors);
    }
}

/// A step is an `async fn`: the runtime awaits it, and the typestate API returns its future.
fn check_async(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if let Some(span) = step.not_async {
        // A fn that returns `impl Future<Output = R>` is one mistake, not two: say what to
        // write, and `check_returns_result` stays quiet about the `impl Future`.
        match step.output.as_ref().and_then(future_output) {
            Some(output) => errors.at(
                span,
                format_args!(
                    "step `{name}` must be an `async fn`: write `async fn {name}(…) -> {}`, with the body of the future it returns",
                    crate::syntax::type_text(output)
                ),
            ),
            None => errors.at(
                span,
                format_args!("step `{name}` must be an `async fn`: write `async fn {name}(…)`"),
            ),
        }
    }
}

/// `R` of a return type `impl Future<Output = R>` (and other bounds).
fn future_output(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::ImplTrait(imp) = ty else {
        return None;
    };
    imp.bounds.iter().find_map(|bound| {
        let syn::TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            syn::GenericArgument::AssocType(a) if a.ident == "Output" => Some(&a.ty),
            _ => None,
        })
    })
}

/// A step takes no `self`: steps are free functions; shared things come through the context.
fn check_no_receiver(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if let Some(span) = step.receiver {
        errors.at(
            span,
            format_args!("step `{name}` cannot take `self`: steps are free functions; reach shared things through `ctx.deps()`"),
        );
    }
}

/// A step is not generic: the state stores each step's input and output, so their types are
/// concrete, the context's deps type is fixed by the workflow, and data does not borrow. A
/// borrowed data parameter is reported by `check_data_by_value` instead, with its owned form.
fn check_generics(wf: &Workflow, step: &Step, errors: &mut Errors) {
    let name = &step.name;
    match &step.generics {
        Some((span, Generics::Types { over_ctx: Some(param) })) => {
            let deps = crate::syntax::type_text(&wf.deps);
            let ctx = if deps == "()" { "&Ctx".to_owned() } else { format!("&Ctx<{deps}>") };
            errors.at(
                *span,
                format_args!("step `{name}` cannot be generic over its context's `{param}`: the workflow's deps type is fixed by `#[workflow(deps = …)]` (here `{deps}`); remove the generics and take `ctx: {ctx}`"),
            );
        }
        Some((span, Generics::Types { over_ctx: None })) => errors.at(
            *span,
            format_args!("step `{name}` cannot be generic: the workflow's state stores each step's input and output, so their types must be concrete; remove the generics and name the types"),
        ),
        // A borrowed data parameter is reported there, with its owned form.
        Some((_, Generics::BorrowedData(_)))
            if step.inputs.iter().any(|i| i.reference.is_some()) => {}
        Some((span, Generics::BorrowedData(lifetime))) => errors.at(
            *span,
            format_args!("step `{name}` cannot take or return data that borrows `{lifetime}`: the runtime moves each step's input into it and may store it in a checkpoint; take owned data (`String`, not `&{lifetime} str`) and remove `{lifetime}`"),
        ),
        None => {}
    }
}

/// A declared return type gives the step's output `T` and error `E` as written: `Result<T, E>`,
/// or an alias of `Result` with a parameter (`io::Result<T>`, `Fallible<T>`; see
/// [`Returns`]). Anything else (`SearchResult`, `u32`, an alias without a parameter) is
/// reported here rather than as one type error per use of the step's output.
fn check_returns_result(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if let Some(output) = &step.output
        && matches!(step.returns, Returns::Other)
        && !(step.not_async.is_some() && future_output(output).is_some())
    {
        let text = crate::syntax::type_text(output);
        // A named type may be an alias of `Result` that flow cannot see through.
        let alias = match output {
            syn::Type::Path(p) if !p.path.get_ident().is_some_and(is_primitive) => {
                " (flow reads `T` and `E` from the type as written: an alias of `Result` without a type parameter must be written out)"
            }
            _ => "",
        };
        errors.push(syn::Error::new_spanned(
            output,
            format_args!(
                "step `{name}` must return `Result<T, E>`, not `{text}`: the next step receives `T`, and `E` fails the run as `FlowError::{}`; write `Result<{text}, YourError>`{alias}",
                pascal_case(&name.to_string())
            ),
        ));
    }
}

/// Whether `name` is a primitive type (`u32`, `bool`, `str`…), never an alias.
fn is_primitive(name: &syn::Ident) -> bool {
    [
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64",
    ]
    .iter()
    .any(|p| name == p)
}

/// A `Box<dyn Error>` error type is `Send + Sync`: a run's errors cross threads.
fn check_sendable_error(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if let Some((error, missing)) = step
        .output
        .as_ref()
        .and_then(crate::syntax::unsendable_box_error)
    {
        errors.push(syn::Error::new_spanned(
            error,
            format_args!(
                "step `{name}` fails with `{}`, which is not `{missing}`: a run's errors cross threads; write `Box<dyn std::error::Error + Send + Sync>`",
                crate::syntax::type_text(error)
            ),
        ));
    }
}

/// A step declares a return type (`-> ()` cannot carry the next step's input).
fn check_has_return(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if step.output.is_none() {
        errors.at(
            name.span(),
            format_args!("step `{name}` must return `Result<T, E>`: the next step receives `T`, and `E` fails the run as `FlowError::{}`", pascal_case(&name.to_string())),
        );
    }
}

/// Data parameters are taken by value: the runtime moves each step's input into it and may store
/// it in a checkpoint; only the context is a reference.
fn check_data_by_value(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    for input in &step.inputs {
        if let Some(by_value) = &input.reference {
            errors.push(syn::Error::new_spanned(
                &input.ty,
                format_args!("step `{name}` must take its data by value: write `{by_value}`; the runtime moves each step's input into it (and may store it in a checkpoint); only the first parameter, the context `&Ctx<…>`, is a reference"),
            ));
        }
    }
}

/// A step's data and output are named types, not `impl Trait`: a checkpoint stores them, and the
/// generated state names them.
fn check_concrete_types(step: &Step, errors: &mut Errors) {
    let name = &step.name;
    let text =
        |imp: &syn::TypeImplTrait| crate::syntax::type_text(&syn::Type::ImplTrait(imp.clone()));
    for input in &step.inputs {
        if let Some(imp) = crate::syntax::impl_trait(&input.ty) {
            errors.push(syn::Error::new_spanned(
                imp,
                format_args!(
                    "step `{name}` cannot take `{}`: a run stores each step's input in its checkpoints, so it must be one named type (`String`, `Vec<u8>`, a struct of yours)",
                    text(imp)
                ),
            ));
        }
    }
    // `&'static str`: a checkpoint reads its state back into owned data.
    if let Some(output) = &step.output
        && let Some(syn::Type::Reference(r)) =
            crate::syntax::generic_args(output, "Result").and_then(|args| args.first().copied())
    {
        errors.push(syn::Error::new_spanned(
            r,
            format_args!(
                "step `{name}` returns `{}`, a reference: a run stores each step's output in its checkpoints and reads it back as owned data; return `{}`",
                crate::syntax::type_text(&syn::Type::Reference(r.clone())),
                crate::syntax::owned_form(&r.elem)
            ),
        ));
    }
    // A plain `fn` returning `impl Future<…>` is `check_async`'s to report, a bare
    // `impl Trait` (not a `Result`) `check_returns_result`'s.
    if step.not_async.is_none()
        && !matches!(step.returns, Returns::Other)
        && let Some(output) = &step.output
        && let Some(imp) = crate::syntax::impl_trait(output)
    {
        errors.push(syn::Error::new_spanned(
            imp,
            format_args!(
                "step `{name}` cannot return `{}`: a run stores each step's output in its checkpoints and hands it to the next step, so it must be one named type (`String`, `Vec<u8>`, a struct of yours)",
                text(imp)
            ),
        ));
    }
}

/// A step that declares `tools` takes a context to call them with.
fn check_tools_take_ctx(wf: &Workflow, step: &Step, errors: &mut Errors) {
    let name = &step.name;
    if let (Some(span), None) = (step.tools_span, &step.ctx) {
        let deps = quote::ToTokens::to_token_stream(&wf.deps)
            .to_string()
            .replace(' ', "");
        errors.at(
            span,
            format_args!(
                "step `{name}` declares tools but takes no context to call them with: add a first parameter `ctx: &Ctx<{deps}, tools::{}>`",
                pascal_case(&name.to_string())
            ),
        );
    }
}

/// A step that declares tools names its own marker in its context, `tools::Step` after the
/// step's name: the tools themselves are listed in `tools = [...]`. Without this check, a
/// context written with a tool's name (`tools::SearchFlights`) is rustc's "cannot find type",
/// with a suggestion to import the tool.
fn check_tools_marker(wf: &Workflow, step: &Step, errors: &mut Errors) {
    let name = &step.name;
    let (Some(_), Some(written), Some(own)) = (
        step.tools_span,
        &step.ctx_marker,
        crate::naming::variant_of(name),
    ) else {
        return;
    };
    if *written == own {
        return;
    }
    let deps = step
        .ctx
        .as_ref()
        .and_then(|ctx| match ctx {
            syn::Type::Reference(r) => crate::syntax::generic_args(&r.elem, "Ctx"),
            _ => None,
        })
        .and_then(|args| args.first().map(|d| crate::syntax::type_text(d)))
        .unwrap_or_else(|| crate::syntax::type_text(&wf.deps));
    let other = wf.steps.iter().find(|s| {
        s.tools_span.is_some() && crate::naming::variant_of(&s.name).as_ref() == Some(written)
    });
    let why = match other {
        Some(other) => format!(
            "`tools::{written}` is the marker of step `{}`, and each step names its own",
            other.name
        ),
        None => "`tools::` markers are named after steps, not tools".to_owned(),
    };
    errors.at(
        written.span(),
        format_args!("the context of step `{name}` is `&Ctx<{deps}, tools::{own}>`: {why}"),
    );
}

/// `workers = N` is on a step that takes one item per call: not on the entry (which takes the raw
/// input once) nor on a join (which runs once with every branch's output).
fn check_workers_place(step: &Step, errors: &mut Errors) {
    if let Some((_, span)) = step.workers {
        if step.entry.is_some() {
            errors.at(span, "the entry step cannot have `workers`: it takes the raw input once; fan out in the step after it");
        } else if step.is_join() {
            errors.at(
                span,
                "a join cannot have `workers`: it runs once with every branch's output",
            );
        }
    }
}

/// The entry, plain steps and branches take one data parameter; a join takes one per branch.
pub(super) fn check_arity(wf: &Workflow, graph: &Graph, errors: &mut Errors) {
    for (i, step) in wf.steps.iter().enumerate() {
        if step.is_join() && !matches!(graph.roles[i], Role::Join { .. }) {
            // Reported by `check_joins`; its arity would only add noise.
            continue;
        }
        if step.event.is_some()
            && (!matches!(graph.roles[i], Role::Single) || step.workers.is_some())
        {
            // Reported by `check_waits`: this step cannot wait, whatever it takes.
            continue;
        }
        let (expected, what) = match &graph.roles[i] {
            Role::Entry => (1, "the entry takes the workflow's input".to_owned()),
            Role::Join { .. } => (
                step.after.len(),
                format!("a join takes one parameter per branch, in the order of `after = [{}]`", step.after.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
            ),
            Role::Single | Role::Branch { .. } if step.workers.is_some() => {
                (1, "a step with `workers` takes one item; the runtime calls it once per element of its predecessor's `Vec`".to_owned())
            }
            Role::Single if step.event.is_some() => {
                let ty = step.event.as_ref().map(|(t, _)| quote::ToTokens::to_token_stream(t).to_string().replace(' ', "")).unwrap_or_default();
                (2, format!("a step that waits for an event takes the output of the step before it, then the event: `(input: T, event: Event<{ty}>)`"))
            }
            Role::Single | Role::Branch { .. } => (1, "a step takes the output of the step before it".to_owned()),
        };
        if step.inputs.len() != expected {
            let ctx = if step.ctx.is_some() {
                "besides `ctx`, "
            } else {
                ""
            };
            errors.at(
                step.params_span,
                format_args!(
                    "step `{}` takes {} data parameter{}, {ctx}but needs {expected}: {what}{}",
                    step.name,
                    step.inputs.len(),
                    if step.inputs.len() == 1 { "" } else { "s" },
                    if step.inputs.len() > expected && step.ctx.is_none() {
                        "; the context, if any, comes first as `ctx: &Ctx<Deps>`"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
}
