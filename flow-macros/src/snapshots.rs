//! Expansion snapshots of representative workflows, pretty-printed. A change to generated code
//! shows up here as a diff to review (`cargo insta review`, or `INSTA_UPDATE=always`).

use proc_macro2::TokenStream;
use quote::quote;

fn expand(args: TokenStream, module: TokenStream) -> String {
    let out = crate::pipeline::workflow(args, module);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(error) => panic!("expansion does not parse as Rust: {error}\n{out}"),
    }
}

#[test]
fn linear() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub mod trip {
                use super::*;

                #[step(entry)]
                pub async fn validate(req: TripRequest) -> Result<Valid<Trip>, Invalid> {
                    Ok(Valid::new(req.into())?)
                }

                #[step(after = validate)]
                pub async fn search(ctx: &Ctx<Airline>, trip: Valid<Trip>) -> Result<Offers, SearchError> {
                    ctx.deps().search(&trip).await
                }

                #[step(after = search, exit)]
                pub async fn book(offers: Offers) -> Result<Receipt, BookError> {
                    book_cheapest(offers).await
                }
            }
        }
    ));
}

/// `typestate = false`: no `Flow`, `state`, `StepFuture` or step methods; the entry, which takes
/// `Valid<T>`, keeps its "validate first" check, for `Workflow::run`.
#[test]
fn without_typestate() {
    insta::assert_snapshot!(expand(
        quote!(typestate = false),
        quote! {
            pub mod trip {
                use super::*;

                #[step(entry)]
                pub async fn validate(req: Valid<TripRequest>) -> Result<Trip, Invalid> {
                    Ok(req.into_inner().into())
                }

                #[step(after = validate, exit)]
                pub async fn book(ctx: &Ctx<Airline>, trip: Trip) -> Result<Receipt, BookError> {
                    ctx.deps().book(trip).await
                }
            }
        }
    ));
}

#[test]
fn routing_and_bounded_loop() {
    insta::assert_snapshot!(expand(
        quote!(deps = Model),
        quote! {
            pub mod write {
                use super::*;

                pub enum Verdict {
                    #[to(draft, max = 3, exhausted = give_up)]
                    Revise(Brief),
                    Accept(Draft),
                }

                #[step(entry)]
                pub async fn draft(ctx: &Ctx<Model>, brief: Brief) -> Result<Draft, ModelError> {
                    ctx.deps().draft(brief).await
                }

                #[step(after = draft, routes = Verdict)]
                pub async fn review(ctx: &Ctx<Model>, draft: Draft) -> Result<Verdict, ModelError> {
                    ctx.deps().review(draft).await
                }

                #[step(after = review, exit)]
                pub async fn accept(draft: Draft) -> Result<Post, ModelError> {
                    Ok(Post::from(draft))
                }

                #[step(after = review, exit)]
                pub async fn give_up(last: LoopExhausted<Brief>) -> Result<Post, ModelError> {
                    Ok(Post::apology(last.iterations))
                }
            }
        }
    ));
}

#[test]
fn fan_out_and_workers() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub mod research {
                use super::*;

                #[step(entry)]
                pub async fn plan(topic: String) -> Result<Vec<Query>, Failed> {
                    Ok(queries(topic))
                }

                #[step(after = plan)]
                pub async fn web(queries: Vec<Query>) -> Result<Vec<Hit>, Failed> {
                    search_web(queries).await
                }

                #[step(after = plan, workers = 4)]
                pub async fn papers(query: Query) -> Result<Paper, Failed> {
                    fetch_paper(query).await
                }

                #[step(after = [web, papers], exit)]
                pub async fn summarize(web: Vec<Hit>, papers: Vec<Paper>) -> Result<Summary, Failed> {
                    Ok(Summary::of(web, papers))
                }
            }
        }
    ));
}

#[test]
fn errors_keep_the_module() {
    // A broken graph still emits the user's items (without `#[step]`) and stand-ins for the
    // generated names, after the errors.
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub mod broken {
                #[step(entry)]
                pub async fn a(x: u32) -> Result<u32, E> { Ok(x) }

                #[step(after = b, exit)]
                pub async fn c(x: u32) -> Result<u32, E> { Ok(x) }
            }
        }
    ));
}

#[test]
fn earlier_outputs_and_converging_routes() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub mod support {
                use super::*;

                pub enum Triage {
                    OrderStatus(Ticket),
                    Escalate(Ticket),
                }

                #[step(entry)]
                pub async fn validate(req: Request) -> Result<Ticket, Invalid> {
                    check(req)
                }

                #[step(after = validate, routes = Triage)]
                pub async fn intake(ticket: Ticket) -> Result<Triage, E> {
                    triage(ticket)
                }

                #[step(after = intake)]
                pub async fn order_status(ticket: Ticket) -> Result<Answer, E> {
                    lookup(ticket).await
                }

                #[step(after = intake)]
                pub async fn escalate(ticket: Ticket) -> Result<Answer, E> {
                    page(ticket).await
                }

                #[step(after = order_status | escalate, exit)]
                pub async fn draft(answer: Answer, #[from(validate)] ticket: &Ticket) -> Result<Reply, E> {
                    write(answer, ticket).await
                }
            }
        }
    ));
}

#[test]
fn branches_as_chains() {
    insta::assert_snapshot!(expand(
        quote!(),
        quote! {
            pub mod research {
                use super::*;

                #[step(entry)]
                pub async fn plan(topic: String) -> Result<Topic, Failed> {
                    Ok(Topic::new(topic))
                }

                #[step(after = plan)]
                pub async fn search(topic: Topic) -> Result<Vec<Hit>, Failed> {
                    search_web(topic).await
                }

                #[step(after = search)]
                pub async fn summarise(hits: Vec<Hit>) -> Result<Summary, Failed> {
                    summarise_hits(hits).await
                }

                #[step(after = plan)]
                pub async fn people(topic: Topic) -> Result<Vec<Person>, Failed> {
                    find_people(topic).await
                }

                #[step(after = [summarise, people], exit)]
                pub async fn report(web: Summary, people: Vec<Person>) -> Result<Report, Failed> {
                    Ok(Report::new(web, people))
                }
            }
        }
    ));
}
