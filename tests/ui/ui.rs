//! Compile-time behaviour: every error the macro or the generated API can produce, pinned with
//! the exact message a user sees, and the must-compile cases that need a crate root of their
//! own (the others are modules of the `compiles` test, one binary instead of one per case).
//!
//! A package of its own (`flow-ui-tests`) so that trybuild's project, which takes this
//! package's dependencies, builds only what the cases use.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*/*.rs");
}
