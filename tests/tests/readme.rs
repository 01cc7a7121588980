//! README's promises that can drift: every compile error has a line in its catalogue, and the
//! two commands it gives are the ones CI runs.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

#[test]
fn every_compile_error_case_is_in_the_catalogue() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut missing = Vec::new();
    let mut count = 0;
    for category in std::fs::read_dir(root().join("tests/ui/fail")).expect("tests/ui/fail") {
        let category = category.expect("entry").path();
        for case in std::fs::read_dir(&category).expect("category") {
            let case = case.expect("entry").path();
            if case.extension().is_some_and(|e| e == "rs") {
                count += 1;
                let rel = case
                    .strip_prefix(root())
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                if !readme.contains(&format!("]({rel})")) {
                    missing.push(rel);
                }
            }
        }
    }
    assert!(
        count >= 30,
        "expected at least 30 compile-fail cases, found {count}"
    );
    assert!(
        missing.is_empty(),
        "README's catalogue misses (run tests/ui/catalogue.py): {missing:#?}"
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    for command in ["cargo test --workspace", "cargo run --example book_flight"] {
        assert!(readme.contains(command), "README does not give `{command}`");
        assert!(ci.contains(command), ".ci/run does not run `{command}`");
    }
}
