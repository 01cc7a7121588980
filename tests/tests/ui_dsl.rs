#[test]
fn ui_dsl() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/converging_routes.rs");
    t.compile_fail("ui/fail/converge/*.rs");
    t.compile_fail("ui/fail/from/*.rs");
}
