//! README's "Dependencies" section and this crate say the same thing: its `toml` block lists
//! exactly this crate's dependencies, and its `rust` block is `src/main.rs`, which therefore
//! compiles (and runs, below) with nothing but those dependencies.

use std::process::Command;

const README: &str = include_str!("../../../README.md");
const MANIFEST: &str = include_str!("../Cargo.toml");
const MAIN: &str = include_str!("../src/main.rs");

/// The body of README's `## Dependencies` section, up to the next `## ` heading.
fn section() -> &'static str {
    let start = README
        .find("\n## Dependencies\n")
        .expect("README has a `## Dependencies` section");
    let body = &README[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |i| i + 3);
    &body[..end]
}

/// The first fenced block of `lang` in `text`.
fn block<'a>(text: &'a str, lang: &str) -> &'a str {
    let fence = format!("```{lang}\n");
    let start = text
        .find(&fence)
        .unwrap_or_else(|| panic!("no ```{lang} block in README's Dependencies section"))
        + fence.len();
    let len = text[start..].find("```\n").expect("the block is closed");
    &text[start..start + len]
}

/// `name = spec` lines of a `[dependencies]` table, comments and blank lines left out.
fn dependencies(toml: &str) -> Vec<(String, String)> {
    let start = toml
        .find("[dependencies]\n")
        .expect("a [dependencies] table")
        + 15;
    toml[start..]
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, spec) = l.split_once(" = ").expect("`name = spec`");
            (name.to_owned(), spec.to_owned())
        })
        .collect()
}

#[test]
fn readme_lists_exactly_these_dependencies() {
    let readme = dependencies(block(section(), "toml"));
    let ours = dependencies(MANIFEST);
    let names = |d: &[(String, String)]| d.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&readme), names(&ours));
    for ((name, readme_spec), (_, our_spec)) in readme.iter().zip(&ours) {
        if name == "flow-runtime" {
            assert_eq!(readme_spec, r#""0.1""#);
        } else {
            assert_eq!(
                readme_spec, our_spec,
                "README and examples/quickstart/Cargo.toml differ on {name}"
            );
        }
    }
}

#[test]
fn readme_example_is_this_crate() {
    assert_eq!(
        block(section(), "rust"),
        MAIN,
        "README's Dependencies example and examples/quickstart/src/main.rs differ: copy one onto the other"
    );
}

#[test]
fn the_example_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_flow-quickstart"))
        .output()
        .expect("the example starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[\"LH 2466 to OSL, 2 seats\"]\n"
    );
}
