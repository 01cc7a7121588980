//! Names: steps are unique and not reserved, every name a step uses resolves, and the user's items
//! do not take generated names.

use super::unknown_step;
use crate::error::Errors;
use crate::model::Workflow;
use crate::naming::{
    GENERATED, RESERVED_STATE_STEPS, RESERVED_STEPS, TYPESTATE_GENERATED, pascal_case, variant_of,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use syn::Ident;

/// Every step name is unique, no step takes the name `Completed` reserves, and every
/// `after`, `#[from(…)]`, route target and `exhausted` names a step.
pub(super) fn check_names(wf: &Workflow, errors: &mut Errors) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    let mut pascal: HashMap<String, &Ident> = HashMap::new();
    // Without the typestate API, only `FlowState`'s fields are taken.
    let reserved = if wf.typestate {
        RESERVED_STEPS
    } else {
        RESERVED_STATE_STEPS
    };
    for (i, step) in wf.steps.iter().enumerate() {
        let name = step.name.to_string();
        // `r#new` is `new` to `Flow`'s methods and `FlowState`'s fields.
        let bare = syn::ext::IdentExt::unraw(&step.name).to_string();
        let upper = pascal_case(&bare);
        if variant_of(&step.name).is_none() {
            let why = if upper.is_empty() {
                "its name has no letter or digit".to_owned()
            } else {
                format!("`{upper}` is not an identifier")
            };
            errors.at(
                step.name.span(),
                format_args!(
                    "step `{name}` has no variant name: `FlowState`, `FlowError` and `state` name a variant after each step in PascalCase, and {why}; rename the step, e.g. `{}`",
                    example_name(&bare)
                ),
            );
        } else {
            match pascal.get(&upper) {
                Some(other) if other.to_string() != name => errors.at(
                    step.name.span(),
                    format_args!(
                        "steps `{other}` and `{name}` both become `{upper}` in `FlowState`, `FlowError` and `state`; rename one of them"
                    ),
                ),
                _ => {
                    pascal.insert(upper.clone(), &step.name);
                }
            }
        }
        if index.insert(name.clone(), i).is_some() {
            errors.at(
                step.name.span(),
                format_args!("duplicate step `{name}`: each step needs its own name"),
            );
        }
        if upper == "Completed" {
            errors.at(
                step.name.span(),
                "the step name `completed` is reserved: `FlowState::Completed` holds a finished run's output; rename the step",
            );
        } else if upper == "Runtime" {
            errors.at(
                step.name.span(),
                "the step name `runtime` is reserved: `FlowError::Runtime` holds the runtime's own errors; rename the step",
            );
        } else if let Some(reason) = reserved.iter().find(|(n, _)| *n == bare).map(|(_, r)| r) {
            errors.at(
                step.name.span(),
                format_args!("the step name `{name}` is reserved: {reason}; rename the step"),
            );
        }
    }
    for step in &wf.steps {
        for pred in &step.after {
            if !index.contains_key(&pred.to_string()) {
                unknown_step(wf, pred, "`after`", errors);
            } else if *pred == step.name {
                errors.at(
                    pred.span(),
                    format_args!(
                        "step `{pred}` cannot run after itself; to repeat a step, route back to it from a later step with `#[to({pred}, max = N, exhausted = step)]`"
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for pred in &step.after {
            if !seen.insert(pred.to_string()) {
                errors.at(
                    pred.span(),
                    format_args!("`{pred}` is listed twice in `after`"),
                );
            }
        }
    }
    for step in &wf.steps {
        let mut seen: Vec<&crate::model::Earlier> = Vec::new();
        for earlier in &step.earlier {
            let from = &earlier.from;
            if !index.contains_key(&from.to_string()) {
                let what = format!(
                    "`#[from]` on parameter `{}` of step `{}`",
                    earlier.pat, step.name
                );
                unknown_step(wf, from, &what, errors);
            } else if *from == step.name {
                errors.at(
                    from.span(),
                    format_args!(
                        "step `{from}` cannot read its own output with `#[from({from})]`: it is what the step returns; name a step that runs before it"
                    ),
                );
            } else if let Some(other) = seen.iter().find(|e| e.from == *from) {
                errors.at(
                    from.span(),
                    format_args!(
                        "step `{}` already reads `{from}`'s output as `{}`; use that parameter and remove this one",
                        step.name, other.pat
                    ),
                );
            }
            seen.push(earlier);
        }
    }
    for route in &wf.enums {
        for variant in &route.variants {
            if !index.contains_key(&variant.to.to_string()) {
                let what = format!("route `{}::{}`", route.name, variant.name);
                unknown_step(wf, &variant.to, &what, errors);
            }
            if let Some(ex) = &variant.exhausted
                && !index.contains_key(&ex.to_string())
            {
                unknown_step(wf, ex, "`exhausted`", errors);
            }
        }
    }
    index
}

/// A name like `bare` whose PascalCase form is an identifier: `_2fa` → `step_2fa`, `self_` →
/// `self_step`, `__` → `step`.
fn example_name(bare: &str) -> String {
    let trimmed = bare.trim_matches('_');
    match trimmed.chars().next() {
        None => "step".to_owned(),
        Some(c) if c.is_alphabetic() => format!("{trimmed}_step"),
        Some(_) => format!("step_{trimmed}"),
    }
}

/// The user's items do not take the names of generated ones.
pub(super) fn check_generated_names(wf: &Workflow, errors: &mut Errors) {
    // The routing handles are the typestate API's, like `TYPESTATE_GENERATED`.
    let routed: Vec<String> = if wf.typestate {
        wf.enums.iter().map(|e| format!("{}Flow", e.name)).collect()
    } else {
        Vec::new()
    };
    let step_names: HashSet<String> = wf.steps.iter().map(|s| s.name.to_string()).collect();
    for ident in &wf.item_names {
        let name = ident.to_string();
        // A function shares the value namespace with the consts only: a step called `state`
        // does not clash with `mod state`.
        let clashes = if step_names.contains(&name) {
            ["NAME", "MERMAID", "FINGERPRINT"].contains(&name.as_str())
        } else {
            GENERATED.contains(&name.as_str())
                || (wf.typestate && TYPESTATE_GENERATED.contains(&name.as_str()))
                || routed.contains(&name)
                // `mod tools` exists only when some step declares tools.
                || (name == "tools" && wf.steps.iter().any(|s| s.tools_span.is_some()))
        };
        if clashes {
            errors.at(
                ident.span(),
                format_args!(
                    "`{name}` is generated by `#[workflow]` in this module; rename this item"
                ),
            );
        }
    }
}
