//! Compile-time behaviour: every pattern that must compile, and every error the macro or the
//! generated API can produce, pinned with the exact message a user sees.
//!
//! A package of its own (`flow-ui-tests`) so that trybuild's project, which takes this
//! package's dependencies, builds only what the cases use.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*/*.rs");
}
