//! Compile-time behaviour: every pattern that must compile, and every error the macro or the
//! generated API can produce, pinned with the exact message a user sees.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*/*.rs");
}
