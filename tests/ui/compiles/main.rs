//! The patterns that must compile, each a module that builds a workflow and runs it (its `main`),
//! all in one test binary: linked once, where trybuild would build and link each case as a
//! program of its own. The cases that must sit at a crate's root (`crate::` paths in the
//! attribute or a step's tools) stay trybuild cases, in `pass/`.

mod bounded_loop;
mod branch_chains;
mod context_with_lifetime;
mod converging_routes;
mod crate_path_as_string;
mod deps;
mod earlier_outputs;
mod error_boxed_dyn_error;
mod fan_out_join;
mod hostile_prelude;
mod linear_chain;
mod raw_identifier_routes;
mod raw_identifier_step;
mod result_alias;
mod routing;
mod shared_route_enum;
mod step_named_state;
mod step_names_like_generated_locals;
mod two_workflows_same_names;
mod valid_input;
mod without_typestate;
mod workers;

#[test]
fn bounded_loop() {
    bounded_loop::main();
}

#[test]
fn branch_chains() {
    branch_chains::main();
}

#[test]
fn context_with_lifetime() {
    context_with_lifetime::main();
}

#[test]
fn converging_routes() {
    converging_routes::main();
}

#[test]
fn crate_path_as_string() {
    crate_path_as_string::main();
}

#[test]
fn deps() {
    deps::main();
}

#[test]
fn earlier_outputs() {
    earlier_outputs::main();
}

#[test]
fn error_boxed_dyn_error() {
    error_boxed_dyn_error::main();
}

#[test]
fn fan_out_join() {
    fan_out_join::main();
}

#[test]
fn hostile_prelude() {
    hostile_prelude::main();
}

#[test]
fn linear_chain() {
    linear_chain::main();
}

#[test]
fn raw_identifier_routes() {
    raw_identifier_routes::main();
}

#[test]
fn raw_identifier_step() {
    raw_identifier_step::main();
}

#[test]
fn result_alias() {
    result_alias::main();
}

#[test]
fn shared_route_enum() {
    shared_route_enum::main();
}

#[test]
fn routing() {
    routing::main();
}

#[test]
fn step_named_state() {
    step_named_state::main();
}

#[test]
fn step_names_like_generated_locals() {
    step_names_like_generated_locals::main();
}

#[test]
fn two_workflows_same_names() {
    two_workflows_same_names::main();
}

#[test]
fn valid_input() {
    valid_input::main();
}

#[test]
fn workers() {
    workers::main();
}

#[test]
fn without_typestate() {
    without_typestate::main();
}
