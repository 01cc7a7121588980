//! The graph as data: `NAME`, the Mermaid diagram and the fingerprint.

use super::Gen;
use crate::model::{Next, Role};
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use std::fmt::Write as _;
use std::hash::Hasher;

/// `NAME`, `MERMAID` and `FINGERPRINT`.
pub(crate) fn generate(g: &Gen<'_>) -> TokenStream {
    let name = g.wf.name.to_string();
    let mermaid = mermaid(g);
    let fingerprint = fingerprint(g);
    quote! {
        /// The workflow's name.
        pub const NAME: &str = #name;
        /// The workflow's graph as a Mermaid `flowchart`.
        pub const MERMAID: &str = #mermaid;
        /// A hash of the graph and of every step's signature: a stored state written by code
        /// with another fingerprint may not fit this code.
        pub const FINGERPRINT: &str = #fingerprint;
    }
}

/// A Mermaid `flowchart`: the entry is a stadium, exits are double circles, steps with
/// workers are subroutines; back-edges are dotted; data edges (`#[from]`) are dotted with a
/// circle at the reading step. Tools are hexagons joined to the steps that
/// may call them by dotted lines without arrows.
pub(crate) fn mermaid(g: &Gen<'_>) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, step) in g.wf.steps.iter().enumerate() {
        let name = g.name(i);
        let mut label = match step.workers {
            Some((n, _)) => format!("{name} ×{n}"),
            None => name.to_owned(),
        };
        if let Some((ty, _)) = &step.event {
            let _ = write!(label, " ⏳ {}", super::waits::event_name(ty));
        }
        if step.sleep.is_some() {
            label.push_str(" 💤");
        }
        let shape = if matches!(g.graph.roles[i], Role::Entry) {
            format!("([\"{label}\"])")
        } else if step.exit.is_some() {
            format!("(((\"{label}\")))")
        } else if step.workers.is_some() {
            format!("[[\"{label}\"]]")
        } else {
            format!("[\"{label}\"]")
        };
        let _ = writeln!(out, "    {name}{shape}");
    }
    for (i, next) in g.graph.next.iter().enumerate() {
        let from = g.name(i);
        match next {
            Next::Exit => {}
            Next::Step(s) | Next::Join { join: s } => {
                let _ = writeln!(out, "    {from} --> {}", g.name(*s));
            }
            Next::Fork { join } => {
                for b in g.graph.heads(*join) {
                    let _ = writeln!(out, "    {from} --> {}", g.name(b));
                }
            }
            Next::Route { enum_index, arms } => {
                let route = &g.wf.enums[*enum_index];
                for arm in arms {
                    let variant = &route.variants[arm.variant].name;
                    let to = g.name(arm.target);
                    match &arm.bound {
                        Some(bound) => {
                            let _ = writeln!(
                                out,
                                "    {from} -.->|\"{variant} (max {})\"| {to}",
                                bound.max
                            );
                            let _ = writeln!(
                                out,
                                "    {from} -->|\"{variant} exhausted\"| {}",
                                g.name(bound.exhausted)
                            );
                        }
                        None if arm.back => {
                            let _ = writeln!(out, "    {from} -.->|{variant}| {to}");
                        }
                        None => {
                            let _ = writeln!(out, "    {from} -->|{variant}| {to}");
                        }
                    }
                }
            }
        }
    }
    // Data edges (`#[from(x)] trip: &T`): dotted, ending in a circle, labelled with the
    // parameter, apart from the control flow.
    for (i, step) in g.wf.steps.iter().enumerate() {
        for earlier in &step.earlier {
            let _ = writeln!(
                out,
                "    {} -.-o|\"{}\"| {}",
                syn::ext::IdentExt::unraw(&earlier.from),
                earlier.pat,
                g.name(i)
            );
        }
    }
    let mut drawn = Vec::new();
    for (i, step) in g.wf.steps.iter().enumerate() {
        for tool in &step.tools {
            let text = tool.to_token_stream().to_string().replace(' ', "");
            let id: String = text
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let id = format!("tool__{id}");
            if !drawn.contains(&id) {
                let label = text.rsplit("::").next().unwrap_or(&text);
                let _ = writeln!(out, "    {id}{{{{\"{label}\"}}}}");
                drawn.push(id.clone());
            }
            let _ = writeln!(out, "    {} -.- {id}", g.name(i));
        }
    }
    out
}

/// FNV-1a of a canonical description: names, edges, bounds, and each step's parameter and
/// return types as written. Any change that could make an old state unreadable changes it.
fn fingerprint(g: &Gen<'_>) -> String {
    let mut text = format!(
        "workflow {} deps {}\n",
        g.wf.name,
        g.wf.deps.to_token_stream()
    );
    for step in &g.wf.steps {
        let _ = write!(
            text,
            "step {} entry={} exit={} after={:?} workers={:?} routes={:?} ctx={} in=[",
            step.name,
            step.entry.is_some(),
            step.exit.is_some(),
            step.after
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            step.workers.map(|(n, _)| n),
            step.routes.as_ref().map(ToString::to_string),
            step.ctx
                .as_ref()
                .map(|t| t.to_token_stream().to_string())
                .unwrap_or_default(),
        );
        for input in &step.inputs {
            let _ = write!(text, "{};", input.ty.to_token_stream());
        }
        for earlier in &step.earlier {
            let _ = write!(
                text,
                "from {}: {};",
                earlier.from,
                earlier.ty.to_token_stream()
            );
        }
        let _ = writeln!(
            text,
            "] out={}",
            step.output
                .as_ref()
                .map(|t| t.to_token_stream().to_string())
                .unwrap_or_default()
        );
    }
    for route in &g.wf.enums {
        let _ = write!(text, "enum {}", route.name);
        for v in &route.variants {
            let _ = write!(
                text,
                " {}({})->{} max={:?} exhausted={:?}",
                v.name,
                v.payload
                    .as_ref()
                    .map(|t| t.to_token_stream().to_string())
                    .unwrap_or_default(),
                v.to,
                v.max.map(|(n, _)| n),
                v.exhausted.as_ref().map(ToString::to_string)
            );
        }
        text.push('\n');
    }
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(text.as_bytes());
    format!("{:016x}", hasher.finish())
}
