//! The checks of the DSL's shapes on their own, without compiling a workflow: which graphs are
//! accepted, and which message a misuse gets (the trybuild cases pin the full output).

use crate::error::Errors;
use proc_macro2::TokenStream;
use quote::quote;

/// The messages `parse` and `check` report for `module`, in order.
fn errors(module: TokenStream) -> Vec<String> {
    match checked(module) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

/// The validated graph of `module`, or the messages.
fn checked(module: TokenStream) -> Result<crate::model::Graph, Vec<String>> {
    let mut module: syn::ItemMod =
        syn::parse2(module).map_err(|error| vec![format!("not a module: {error}")])?;
    let mut errors = Errors::default();
    let wf = crate::parse::workflow(TokenStream::new(), &mut module, &mut errors);
    let graph = match &wf {
        Some(wf) if errors.is_empty() => super::workflow(wf, &mut errors),
        _ => None,
    };
    match (errors.into_result(), graph) {
        (Ok(()), Some(graph)) => Ok(graph),
        (Ok(()), None) => Err(vec!["no graph and no error".to_owned()]),
        (Err(error), _) => Err(error.into_iter().map(|e| e.to_string()).collect()),
    }
}

/// Support: two routes of `intake` converge at `draft`, `review` loops back to `draft` and
/// its exit converges with the approved route at `send`.
fn support(draft_after: &TokenStream, draft_params: &TokenStream) -> TokenStream {
    quote! {
        mod support {
            enum Triage { OrderStatus(String), Escalate(String) }
            enum Review { #[to(draft, max = 2, exhausted = give_up)] Revise(String), Approve(String) }

            #[step(entry, routes = Triage)]
            async fn intake(text: String) -> Result<Triage, E> { todo!() }
            #[step(after = intake)]
            async fn order_status(order: String) -> Result<String, E> { todo!() }
            #[step(after = intake)]
            async fn escalate(text: String) -> Result<String, E> { todo!() }
            #[step(after = #draft_after)]
            async fn draft(#draft_params) -> Result<String, E> { todo!() }
            #[step(after = draft, routes = Review)]
            async fn review(text: String, #[from(intake)] triage: &Triage) -> Result<Review, E> { todo!() }
            #[step(after = review)]
            async fn give_up(last: LoopExhausted<String>) -> Result<String, E> { todo!() }
            #[step(after = review)]
            async fn approve(text: String) -> Result<String, E> { todo!() }
            #[step(after = approve | give_up, exit)]
            async fn send(text: String, #[from(draft)] draft: &String) -> Result<String, E> { todo!() }
        }
    }
}

#[test]
fn accepts_converging_routes_and_earlier_outputs() {
    let found = errors(support(
        &quote!(order_status | escalate),
        &quote!(answer: String, #[from(intake)] triage: &Triage),
    ));
    assert_eq!(found, Vec::<String>::new());
}

fn research() -> TokenStream {
    quote! {
        mod research {
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn split(topic: String) -> Result<String, E> { todo!() }
            #[step(after = split)]
            async fn web(topic: String, #[from(plan)] plan: &String) -> Result<u32, E> { todo!() }
            #[step(after = split)]
            async fn papers(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = [web, papers])]
            async fn merge(web: u32, papers: u32, #[from(split)] topic: &String) -> Result<u32, E> { todo!() }
            #[step(after = merge, exit)]
            async fn report(total: u32, #[from(web)] web: &u32, #[from(plan)] plan: &String) -> Result<u32, E> { todo!() }
        }
    }
}

#[test]
fn accepts_earlier_outputs_around_a_fan_out() {
    assert_eq!(errors(research()), Vec::<String>::new());
}

#[test]
fn a_state_carries_only_the_outputs_a_later_step_reads() {
    let graph = checked(research()).unwrap_or_else(|e| panic!("{e:?}"));
    // plan, split, web, papers, merge, report
    let expected: [&[usize]; 6] = [&[], &[0], &[], &[], &[0, 1], &[0, 2]];
    assert_eq!(graph.carry, expected);
    let graph = checked(support(
        &quote!(order_status | escalate),
        &quote!(answer: String, #[from(intake)] triage: &Triage),
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    // intake, order_status, escalate, draft, review, give_up, approve, send: `intake`'s
    // output until `review` (which loops back to `draft`, which reads it again), `draft`'s
    // from `review` to `send`.
    let expected: [&[usize]; 8] = [&[], &[0], &[0], &[0], &[0, 3], &[3], &[3], &[3]];
    assert_eq!(graph.carry, expected);
}

#[test]
fn a_route_that_skips_the_step_read_is_named() {
    let found = errors(support(
        &quote!(order_status | escalate),
        &quote!(answer: String, #[from(order_status)] order: &String),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("`intake → escalate → draft` skips it"),
        "{found:?}"
    );
}

#[test]
fn a_loop_body_after_the_step_runs_after_it() {
    let found = errors(support(
        &quote!(order_status | escalate),
        &quote!(answer: String, #[from(review)] review: &Review),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("`review` runs after `draft`, so its output does not exist yet"),
        "{found:?}"
    );
}

#[test]
fn routes_joined_as_branches_are_offered_the_converging_form() {
    let found = errors(support(
        &quote!([order_status, escalate]),
        &quote!(answer: String),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("write `after = order_status | escalate`"),
        "{found:?}"
    );
}

#[test]
fn converging_steps_that_both_run_are_refused() {
    let found = errors(quote! {
        mod pipeline {
            enum Kind { Clean(String), Keep(String) }
            #[step(entry, routes = Kind)]
            async fn fetch(url: String) -> Result<Kind, E> { todo!() }
            #[step(after = fetch)]
            async fn clean(page: String) -> Result<String, E> { todo!() }
            #[step(after = clean)]
            async fn tidy(page: String) -> Result<String, E> { todo!() }
            #[step(after = fetch)]
            async fn keep(page: String) -> Result<String, E> { todo!() }
            #[step(after = keep | clean | tidy, exit)]
            async fn store(page: String) -> Result<String, E> { todo!() }
        }
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("but `tidy` can run after `clean` in the same pass"),
        "{found:?}"
    );
}

#[test]
fn routes_of_routers_downstream_of_one_another_converge() {
    let found = errors(quote! {
        mod desk {
            enum First { Easy(String), Hard(String) }
            enum Second { Refund(String), Human(String) }
            #[step(entry, routes = First)]
            async fn intake(text: String) -> Result<First, E> { todo!() }
            #[step(after = intake)]
            async fn easy(text: String) -> Result<String, E> { todo!() }
            #[step(after = intake, routes = Second)]
            async fn hard(text: String) -> Result<Second, E> { todo!() }
            #[step(after = hard)]
            async fn refund(text: String) -> Result<String, E> { todo!() }
            #[step(after = hard)]
            async fn human(text: String, #[from(intake)] first: &First) -> Result<String, E> { todo!() }
            #[step(after = easy | refund | human, exit)]
            async fn reply(text: String, #[from(intake)] first: &First) -> Result<String, E> { todo!() }
        }
    });
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn earlier_outputs_work_in_workers_and_waiting_steps() {
    let found = errors(quote! {
        mod batch {
            #[step(entry)]
            async fn split(text: String) -> Result<Vec<String>, E> { todo!() }
            #[step(after = split, workers = 2)]
            async fn each(word: String, #[from(split)] all: &Vec<String>) -> Result<usize, E> { todo!() }
            #[step(after = each, event = Approval, timeout = Duration::from_secs(1))]
            async fn approve(lens: Vec<usize>, ok: Event<Approval>, #[from(split)] all: &Vec<String>) -> Result<usize, E> { todo!() }
            #[step(after = approve, exit)]
            async fn done(n: usize, #[from(each)] lens: &Vec<usize>) -> Result<usize, E> { todo!() }
        }
    });
    assert_eq!(found, Vec::<String>::new());
}

#[test]
fn a_sibling_branch_is_named_as_such() {
    let found = errors(quote! {
        mod research {
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn web(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn papers(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn news(topic: String, #[from(papers)] papers: &u32) -> Result<u32, E> { todo!() }
            #[step(after = [web, papers, news], exit)]
            async fn merge(a: u32, b: u32, c: u32) -> Result<u32, E> { todo!() }
        }
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("`papers` is a sibling branch of `news`"),
        "{found:?}"
    );
}
