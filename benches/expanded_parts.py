#!/usr/bin/env python3
"""What each kind of generated item costs a warm `cargo check`: the pasted expansion of a chain
with one kind of item taken out (or replaced by a cheaper form), in rustc's instructions.

    python3 benches/compile_time.py --sizes 50 --variants hand expanded --runs 1 --keep
    python3 benches/expanded_parts.py /tmp/flow-compile-time-XXXX/ct_expanded50

Each variant is a copy of the `expanded` crate whose `src/lib.rs` is rewritten by the regular
expressions below; they follow the expansion of the chain `compile_time.py` generates, as rustfmt
lays it out, so the script stops (rather than measure an unchanged copy) when a rewrite matches
nothing, and every variant must still compile. A variant is not a design: taking out the edge
traits loses the error that names both steps of a mismatched edge; the figure is what that kind of
item costs, so what a design that generates fewer of them could save. Counts by `ab_check.py
--instructions` (callgrind, rustc's own instructions, the same on every run of one toolchain on one
machine); the ratios are to the unchanged expansion.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEP_METHOD_CALL = r"self\.__flow_(then|exit)\(\d+usize, __flow_call_s\d+, __flow_\w+\)"
AWAITED_TRAIT = (
    r'    #\[diagnostic::on_unimplemented\(\n        message = "`\.s\d+\(\)` is called on the future'
    r".*?impl<S: __flow_Marker> __flow_awaited_s\d+ for Flow<S> \{\}\n"
)
EDGE_TRAIT = (
    r'    #\[diagnostic::on_unimplemented\(\n        message = "step `s\d+` takes `\{T\}`, but the step before'
    r".*?\n    impl<T> __flow_edge_to_s\d+_from_s\d+<T> for T \{\n.*?\n    \}\n"
)


def sub(pattern: str, repl: str, text: str, what: str, flags: int = 0, expected: int | None = None) -> str:
    """`re.subn`, refusing a rewrite that matches nothing, or not `expected` times when given (so a
    rewrite that misses some of its targets is not measured as if it had them all)."""
    out, n = re.subn(pattern, repl, text, flags=flags)
    if n == 0 or (expected is not None and n != expected):
        sys.exit(f"the rewrite for {what} matched {n} times, expected {expected or 'some'}: has the expansion changed shape?")
    print(f"  {what}: {n}", file=sys.stderr)
    return out


def steps(t: str) -> int:
    """The number of steps of the chain: its `pub async fn sN`."""
    return len(re.findall(r"\n    pub async fn s\d+\(", t))


def without_stand_ins(t: str) -> str:
    n = steps(t)
    awaited = AWAITED_TRAIT.replace("<S: __flow_Marker>", "<S(?:: __flow_Marker)?>")
    t = sub(awaited, "", t, "the awaited traits", re.S, expected=n)
    start = t.index("    #[doc(hidden)]\n    #[allow(clippy::unused_self, missing_docs)]\n    impl<T> StepFuture<T> {")
    end = t.index("\n    }\n", start)  # the impl's own closing brace: its methods' are indented deeper
    return t[:start] + t[end + len("\n    }\n") :]


# The typestate API over `FlowState`: `Flow<S>` holds the run's `FlowState` (not the next step's
# data), a step method is `self.__flow_go()`, and one generic function (here in the crate; it would
# live in flow-runtime) runs the step through `Machine::step`, as `Workflow::run` does. Gone per
# step: the `__flow_Marker` impl (`Data`, `Kept`, `AT`, `into_state`) and the `__flow_can_*`
# trait's supertrait bound; kept: the markers, the `__flow_can_*` traits with their messages, the
# stand-ins. Linear chains only (what `compile_time.py` generates); `Flow::input` is left out.
FLOW_OVER_STATE = """    #[doc = "A run of workflow `wf` driven one step at a time."]
    pub struct Flow<S> {
        ctx: ::flow_runtime::state::Ctx<()>,
        state: FlowState,
        attempt: u32,
        at: ::core::marker::PhantomData<fn() -> S>,
    }
    impl<S> ::core::fmt::Debug for Flow<S> {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            ::core::write!(f, "Flow({} at `{}`, run {})", NAME, self.state.step().unwrap_or("?"), self.ctx.run_id())
        }
    }
    impl Flow<state::S1> {
        #[doc = r" A new run at the entry step, which takes the raw `input`."]
        #[must_use]
        pub fn new(ctx: &::flow_runtime::state::Ctx<()>, input: __FlowInS1) -> Self {
            Self {
                ctx: ::core::clone::Clone::clone(ctx),
                state: <Workflow as ::flow_runtime::state::Workflow>::start(input),
                attempt: __flow_p::first_attempt(ctx),
                at: ::core::marker::PhantomData,
            }
        }
    }
    #[allow(clippy::future_not_send, clippy::missing_errors_doc)]
    impl<S> Flow<S> {
        #[doc = r" The run's context."]
        #[must_use]
        pub fn ctx(&self) -> &::flow_runtime::state::Ctx<()> {
            &self.ctx
        }
        #[doc = r" The loop counters."]
        #[must_use]
        pub fn loops(&self) -> Loops {
            self.state.loops().unwrap_or_default()
        }
        #[doc = r" The same position as a [`FlowState`]."]
        #[must_use]
        pub fn into_state(self) -> FlowState {
            self.state
        }
        #[inline]
        fn __flow_go<N: 'static>(self) -> StepFuture<__flow_p::Result<Flow<N>, FlowError>> {
            let Self { ctx, state, attempt, .. } = self;
            StepFuture(crate::advance::<Workflow, _, _>(ctx, state, attempt, |ctx, state| {
                __flow_p::Ok(Flow { ctx, state, attempt: 1, at: ::core::marker::PhantomData })
            }))
        }
        #[inline]
        fn __flow_end(self) -> StepFuture<__flow_p::Result<__FlowOutput, FlowError>> {
            let Self { ctx, state, attempt, .. } = self;
            StepFuture(crate::advance::<Workflow, _, _>(ctx, state, attempt, |_, state| {
                <Workflow as __flow_p::Machine>::finish(state)
                    .map_err(|_| FlowError::Runtime(__flow_p::invalid_state(NAME, "?", "not finished")))
            }))
        }
"""

ADVANCE = """
/// What would be `flow_runtime::__private::advance`: one step of a typestate `Flow`, through `Machine::step`.
pub fn advance<W, R, N>(
    ctx: flow_runtime::state::Ctx<W::Deps>,
    state: W::State,
    attempt: u32,
    next: N,
) -> flow_runtime::__private::StepFuture<Result<R, W::Error>>
where
    W: flow_runtime::__private::Machine,
    W::State: Send + 'static,
    W::Deps: Send + Sync + 'static,
    R: Send + 'static,
    N: FnOnce(flow_runtime::state::Ctx<W::Deps>, W::State) -> Result<R, W::Error> + Send + 'static,
{
    Box::pin(async move {
        let flow_runtime::__private::Position::Step { step, visit } = W::position(&state) else {
            unreachable!("a linear chain's typestate is always at a step")
        };
        let graph = W::GRAPH;
        let out = flow_runtime::__private::step_alone(&ctx, &graph, step, attempt, visit, |run, event| {
            W::step(&ctx, run, state, event)
        })
        .await?;
        next(ctx, out)
    })
}
"""


def flow_over_state(t: str) -> str:
    """The expansion with its typestate API over `FlowState` (see FLOW_OVER_STATE)."""
    markers_end = t.index("    #[doc(hidden)]", t.index("    pub mod state {"))
    flow_start = t.index('    #[doc = "A run of workflow')
    future_start = t.index('    #[doc = r" The future a step method of [`Flow`]')
    cans = re.findall(
        r"    #\[diagnostic::on_unimplemented\(\n.*?\n    impl __flow_can_s\d+ for state::S\d+ \{\}",
        t[markers_end:flow_start],
        flags=re.S,
    )
    if not cans:
        sys.exit("the rewrite for the typestate over `FlowState` found no `__flow_can_*` trait")
    cans = [re.sub(r": __flow_Marker<Data = __FlowInS\d+, Kept = \(\)> \{\}", " {}", c) for c in cans]
    methods = []
    for n in range(1, len(cans) + 1):
        ret = "__FlowOutput" if n == len(cans) else f"Flow<state::S{n + 1}>"
        body = "self.__flow_end()" if n == len(cans) else "self.__flow_go()"
        methods.append(
            f'        #[doc = "Runs step `s{n}`."]\n'
            f"        pub fn s{n}(self) -> StepFuture<__flow_p::Result<{ret}, FlowError>>\n"
            f"        where\n            S: __flow_can_s{n},\n        {{\n            {body}\n        }}"
        )
    rest = t[future_start:].replace("impl<S: __flow_Marker> __flow_awaited", "impl<S> __flow_awaited")
    return t[:markers_end] + "\n".join(cans) + "\n" + FLOW_OVER_STATE + "\n".join(methods) + "\n    }\n" + rest + ADVANCE


def variants(t: str) -> dict[str, str]:
    n = steps(t)
    over_state = flow_over_state(t)
    aliases = sub(r"\n    type __Flow(Out|In|Err)S\d+ = [^;]*;", "", t, "the aliases", expected=3 * n)
    aliases = sub(r"__Flow(Out|In)S\d+", "u64", aliases, "the alias uses")
    aliases = sub(r"__FlowErrS\d+", "Infallible", aliases, "the error alias uses")
    edges = sub(EDGE_TRAIT, "", t, "the edge traits", re.S, expected=n - 1)
    edges = sub(
        r"<__FlowOutS\d+ as __flow_edge_to_s\d+_from_s\d+<\s*__FlowInS\d+,?\s*>>::feed\(value\)",
        "value",
        edges,
        "the edge calls",
        expected=n - 1,
    )
    no_at = sub(r"\n        const AT: &'static str = \"s\d+\";", "", t, "the AT consts", expected=n)
    no_at = sub(r"\n\s*const AT: &'static str;", "", no_at, "the AT declaration")
    no_at = sub(r"<S as __flow_Marker>::AT", '"?"', no_at, "the AT use")
    boxed = sub(
        r"-> impl ::core::future::Future<Output = (__flow_p::StepResult<__FlowOutS\d+, FlowError>)>\n"
        r"    \+ ::core::marker::Send\n    \+ 'a \{\n        (__flow_p::step_output_after\(.*?\n        \))\n    \}",
        r"-> __flow_p::BoxFuture<'a, \1> {\n        ::std::boxed::Box::pin(\2)\n    }",
        t,
        "the adapters' return types",
        re.S,
        expected=n,
    )
    return {
        "unchanged": t,
        "no_stand_ins": without_stand_ins(t),
        "no_edge_traits": edges,
        "step_methods_loop": sub(STEP_METHOD_CALL, "loop {}", t, "the step methods' bodies", expected=n),
        "no_type_aliases": aliases,
        # Three per step (order, `.await`, edge) but the entry's edge: 3n − 1.
        "no_on_unimplemented": sub(
            r"\n\s*#\[diagnostic::on_unimplemented\(.*?\)\]", "", t, "the diagnostics", re.S, expected=3 * n - 1
        ),
        # `#[doc = "…"]` only, the generated per-step docs; not the fixed `#[doc = r"…"]` ones.
        "no_doc_string_attrs": sub(r'\n\s*#\[doc = "[^\n]*"\]', "", t, "the doc attributes"),
        "no_allow_or_hidden": sub(
            r"\n\s*#\[doc\(hidden\)\]", "", sub(r"\n\s*#\[allow\(non_camel_case_types\)\]", "", t, "allow"), "hidden"
        ),
        "no_inline": sub(r"\n\s*#\[inline\]", "", t, "the inline attributes"),
        "no_marker_at": no_at,
        "adapters_boxed": boxed,
        "typestate_over_flowstate": over_state,
        "typestate_over_flowstate_no_stand_ins": without_stand_ins(over_state),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("expanded", type=Path, help="an `expanded` crate kept by compile_time.py --keep")
    ap.add_argument("--target-dir", default="/work/target-compile-time", help="compile_time.py's default")
    args = ap.parse_args()
    source = (args.expanded / "src" / "lib.rs").read_text()
    manifest = (args.expanded / "Cargo.toml").read_text()
    with tempfile.TemporaryDirectory(prefix="flow-expanded-parts-") as tmp:
        crates = []
        for name, text in variants(source).items():
            crate = Path(tmp) / name
            shutil.copytree(args.expanded, crate, ignore=shutil.ignore_patterns("target"))
            (crate / "Cargo.toml").write_text(
                re.sub(r'(?m)^name = "[^"]*"', f'name = "ct_part_{name}"', manifest, count=1)
            )
            (crate / "src" / "lib.rs").write_text(text)
            crates.append(crate)
        done = subprocess.run(
            [sys.executable, str(HERE / "ab_check.py"), "--instructions", "--target-dir", args.target_dir, *map(str, crates)]
        )
        sys.exit(done.returncode)


if __name__ == "__main__":
    main()
