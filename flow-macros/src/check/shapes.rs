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

/// A research fan-out whose branches are chains: `web` searches then summarises, `papers`
/// searches, ranks and summarises, `people` is one step. `$web_end`, `$papers_tail` and
/// `$join_after` vary it into the misuses below.
fn chains(web_end: &TokenStream, rank_attr: &TokenStream, join_after: &TokenStream) -> TokenStream {
    quote! {
        mod research {
            enum Pick { SummarisePapers(Vec<String>), People(String) }
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn search_web(topic: String) -> Result<Vec<String>, E> { todo!() }
            #[step(#web_end)]
            async fn summarise_web(pages: Vec<String>) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn search_papers(topic: String) -> Result<Vec<String>, E> { todo!() }
            #[step(#rank_attr)]
            async fn rank(papers: Vec<String>, #[from(plan)] topic: &String) -> Result<Vec<String>, E> { todo!() }
            #[step(after = rank)]
            async fn summarise_papers(papers: Vec<String>) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn people(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = #join_after, exit)]
            async fn report(web: u32, papers: u32, people: u32) -> Result<u32, E> { todo!() }
        }
    }
}

fn good_chains() -> TokenStream {
    chains(
        &quote!(after = search_web),
        &quote!(after = search_papers),
        &quote!([summarise_web, summarise_papers, people]),
    )
}

#[test]
fn accepts_branches_that_are_chains() {
    let graph = checked(good_chains()).unwrap_or_else(|e| panic!("{e:?}"));
    // plan 0, search_web 1, summarise_web 2, search_papers 3, rank 4, summarise_papers 5,
    // people 6, report 7.
    let crate::model::Role::Join {
        fork,
        branches,
        chains,
    } = &graph.roles[7]
    else {
        panic!("report is not a join");
    };
    assert_eq!(*fork, 0);
    assert_eq!(branches, &[2, 5, 6]);
    assert_eq!(chains, &[vec![1, 2], vec![3, 4, 5], vec![6]]);
    assert!(matches!(
        graph.next[0],
        crate::model::Next::Fork { join: 7 }
    ));
    assert!(matches!(graph.next[4], crate::model::Next::Step(5)));
    assert!(matches!(
        graph.next[5],
        crate::model::Next::Join { join: 7 }
    ));
    for (step, slot) in [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (6, 2)] {
        assert!(
            matches!(graph.roles[step], crate::model::Role::Branch { join: 7, slot: s } if s == slot),
            "step {step}"
        );
    }
    // `rank` reads the plan: the join's state carries it while the branches run.
    assert_eq!(graph.carry[7], [0]);
}

#[test]
fn a_chain_that_leaves_the_fan_out_is_refused_at_the_step() {
    let found = errors(chains(
        &quote!(after = search_web, exit),
        &quote!(after = search_papers),
        &quote!([summarise_papers, people]),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("step `summarise_web` is a step of the branch `search_web → summarise_web` of the fan-out after `plan`, but it is an exit; a branch ends in the join"),
        "{found:?}"
    );
}

#[test]
fn a_branch_step_that_routes_is_refused() {
    let found = errors(chains(
        &quote!(after = search_web),
        &quote!(after = search_papers, routes = Pick),
        &quote!([summarise_web, summarise_papers, people]),
    ));
    assert!(
        found.iter().any(|e| e.starts_with("step `rank` is a step of the branch `search_papers → rank` of the fan-out after `plan`, but it routes")),
        "{found:?}"
    );
}

#[test]
fn a_step_shared_by_two_branches_is_refused_once() {
    let found = errors(chains(
        &quote!(after = search_web),
        &quote!(after = search_papers | search_web),
        &quote!([summarise_web, summarise_papers, people]),
    ));
    let shared: Vec<_> = found
        .iter()
        .filter(|e| e.starts_with("step `rank`"))
        .collect();
    assert_eq!(shared.len(), 1, "{found:?}");
    assert!(
        shared[0].contains("but it also runs after `search_web`; a step of a branch runs after the step before it, `search_papers`, only: give each branch its own steps"),
        "{found:?}"
    );
    assert!(
        shared[0].ends_with("`#[step(after = [summarise_web, search_papers, people])]`"),
        "{found:?}"
    );
}

#[test]
fn a_join_that_lists_a_chain_first_step_is_told_to_list_its_last() {
    let found = errors(chains(
        &quote!(after = search_web),
        &quote!(after = search_papers),
        &quote!([search_web, summarise_papers, people]),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("step `search_web` is a branch of the fan-out after `plan` (branches: `search_web`, `search_papers`, `people`), but both `summarise_web` and the join `report` run after it, so the join lists a step in the middle of this branch"),
        "{found:?}"
    );
    assert!(
        found[0].ends_with("`#[step(after = [summarise_web, summarise_papers, people])]`"),
        "{found:?}"
    );
}

#[test]
fn a_chain_missing_from_the_join_is_named() {
    let found = errors(chains(
        &quote!(after = search_web),
        &quote!(after = search_papers),
        &quote!([summarise_web, people]),
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("step `summarise_papers` is a step of the branch `search_papers → rank → summarise_papers` of the fan-out after `plan`, but nothing runs after it: the join must list it"),
        "{found:?}"
    );
    assert!(
        found[0].ends_with("`#[step(after = [summarise_web, summarise_papers, people])]`"),
        "{found:?}"
    );
}

#[test]
fn a_fan_out_inside_a_branch_is_refused() {
    let found = errors(quote! {
        mod research {
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn web(topic: String) -> Result<String, E> { todo!() }
            #[step(after = web)]
            async fn blogs(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = web)]
            async fn news(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn papers(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = [blogs, news, papers], exit)]
            async fn merge(a: u32, b: u32, c: u32) -> Result<u32, E> { todo!() }
        }
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("step `web` is a branch of the fan-out after `plan` (branches: `web`, `papers`), but it fans out again (to `blogs`, `news`)"),
        "{found:?}"
    );
}

#[test]
fn a_step_inside_a_chain_is_read_only_by_the_next_one() {
    let found = errors(quote! {
        mod research {
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn search(topic: String) -> Result<Vec<String>, E> { todo!() }
            #[step(after = search)]
            async fn rank(found: Vec<String>) -> Result<Vec<String>, E> { todo!() }
            #[step(after = rank)]
            async fn summarise(ranked: Vec<String>, #[from(search)] all: &Vec<String>) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn people(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = [summarise, people], exit)]
            async fn merge(a: u32, b: u32, #[from(rank)] ranked: &Vec<String>) -> Result<u32, E> { todo!() }
        }
    });
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "`search` is a step inside the branch `search → rank → summarise` of a fan-out"
        ),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("`rank` is a step inside the branch"),
        "{found:?}"
    );
}

#[test]
fn a_later_step_of_the_same_chain_runs_after() {
    let found = errors(quote! {
        mod research {
            #[step(entry)]
            async fn plan(topic: String) -> Result<String, E> { todo!() }
            #[step(after = plan)]
            async fn search(topic: String, #[from(summarise)] s: &u32) -> Result<Vec<String>, E> { todo!() }
            #[step(after = search)]
            async fn summarise(found: Vec<String>) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn people(topic: String) -> Result<u32, E> { todo!() }
            #[step(after = [summarise, people], exit)]
            async fn merge(a: u32, b: u32) -> Result<u32, E> { todo!() }
        }
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("`summarise` runs after `search`, so its output does not exist yet"),
        "{found:?}"
    );
}

/// A return type counts as a `Result` by its syntax: `Result<T, E>`, a path ending in `Result`,
/// or another type with one type parameter (an alias); a struct named `…Result`, an alias
/// without a parameter, a std container or a struct of the module is one error, at the type.
#[test]
fn return_types_are_read_as_written() {
    let module = |ret: TokenStream| {
        quote! {
            mod w {
                struct Page<T>(T);
                #[step(entry, exit)]
                async fn only(x: String) -> #ret { todo!() }
            }
        }
    };
    for ok in [
        quote!(Result<String, E>),
        quote!(std::io::Result<String>),
        quote!(anyhow::Result<String>),
        quote!(std::fmt::Result),
        quote!(Fallible<String>),
        quote!(QueryResult<String>),
    ] {
        assert_eq!(errors(module(ok.clone())), Vec::<String>::new(), "{ok}");
    }
    for refused in [
        quote!(SearchResult),
        quote!(SearchOut),
        quote!(Vec<String>),
        quote!(Option<String>),
        quote!(Page<String>),
        quote!((String, u32)),
    ] {
        let found = errors(module(refused.clone()));
        assert_eq!(found.len(), 1, "{refused}: {found:?}");
        assert!(
            found[0].contains("must return `Result<T, E>`"),
            "{refused}: {found:?}"
        );
    }
}

/// A fan-out whose step returns an enum named after its branches is valid when it is a
/// fan-out (the hint for a forgotten `routes` replaces only an error).
#[test]
fn enum_named_after_branches_is_a_valid_fan_out() {
    let graph = checked(quote! {
        mod research {
            enum Plan { Web(String), Papers(String) }
            #[step(entry)]
            async fn plan(topic: String) -> Result<Plan, E> { todo!() }
            #[step(after = plan)]
            async fn web(plan: Plan) -> Result<u32, E> { todo!() }
            #[step(after = plan)]
            async fn papers(plan: Plan) -> Result<u32, E> { todo!() }
            #[step(after = [web, papers], exit)]
            async fn report(web: u32, papers: u32) -> Result<u32, E> { todo!() }
        }
    });
    assert!(graph.is_ok(), "{:?}", graph.err());
}
