#!/usr/bin/env python3
"""Compile time of a `#[workflow]` against the same steps in plain Rust and in statum.

    python3 benches/compile_time.py                     # warm `cargo check`, sizes 1 10 50 200, 11 rounds
    python3 benches/compile_time.py --sizes 50 --runs 11
    python3 benches/compile_time.py --release           # `cargo build --release`, sizes 1 10 50 200, 3 rounds
    python3 benches/compile_time.py --opt-macros        # the proc macro optimised (README's tip for long workflows)
    python3 benches/compile_time.py --bodies work       # steps whose bodies do some work (17 lines each)

For each size N it generates, in a temporary directory, small crates holding an N-step linear
chain whose steps add 1 to a `u64` (`async fn sI(x: u64) -> Result<u64, Infallible>`; with
`--bodies work`, each step's body first does 17 lines of string and number work):

  plain     the N step functions and a hand-written `async fn run` that calls them in order;
            no dependency at all (plain async Rust);
  hand      the same source, in a crate that also links flow-runtime (what you would write
            without the macro in a crate that uses flow anyway);
  macro     the same N functions in a `#[workflow]` module;
  expanded  the macro's output for that module (captured with FLOW_MACROS_DEBUG=1 and run
            through rustfmt), pasted in place of the attribute;
  statum    the same N functions driven through a typestate machine of the statum crate
            (`#[state] enum ChainState { S0(u64), …, SN(u64) }`, `#[machine] struct Chain`, and per
            step a `#[transition] impl Chain<S(I-1)>` with `async fn sI(self) ->
            Result<Chain<SI>, Infallible>` that awaits the step function), plus an `async fn run`
            that calls the N transitions in order: statum's closest form of the same chain.

plus `empty` (a crate that only links flow-runtime) and `empty_plain` (no dependency): the
fixed cost of starting cargo and rustc, which every other figure includes.

All crates share one CARGO_TARGET_DIR (`--target-dir`), so dependencies are built once,
before any timing. Every crate starts from a copy of the workspace's Cargo.lock and builds
`--offline`, so it compiles the same dependency versions as the workspace; after the first
build the script checks that every registry package in each crate's lock is at a version the
workspace's lock pins (statum and its two crates, which the workspace does not use, are
resolved once, with the network, at `=STATUM_VERSION`, into one lock that every statum crate
copies).

Warm check (default). A measurement is: touch src/lib.rs, run `cargo check`, take the wall
time and the user + system CPU time of cargo and every rustc it ran (wait4's rusage of
cargo). The crates are measured round-robin (each variant of each size, then again), so a
burst of load on a shared machine hits every variant alike; the tables show medians.

  macro / hand            what the macro costs in check time, all included;
  (macro − hand) / N      the macro's added CPU per step;
  statum / plain          the same ratio for statum;
  macro − expanded        the proc macro itself (parsing, checking, generating: the macro
                          crate is built with the dev profile, unoptimised, as users get it,
                          unless `--opt-macros` optimises flow-macros and syn, quote and
                          proc-macro2 in every crate: statum's own macros stay unoptimised);
  expanded − hand         checking the extra items the macro generates;
  lines / step            the rustfmt'ed expansion's lines divided by N.

Release (`--release`). The same chains, each crate with a `drive` function that runs the
chain once on a current-thread tokio runtime (`Workflow::run` for `macro`, the statum
transitions for `statum`, the hand-written `run` for `plain` and `hand`) and a `main` that
calls it, so the whole chain is monomorphised and optimised in the user's crate. A
measurement is: touch src/lib.rs, `cargo build --release` (dependencies built before any
timing), wall time, CPU time and peak resident memory of the biggest process (rustc). A build
still running after `--timeout` minutes is killed (with every process it started) and shown
as "> T min", and that crate is not built again (the first build of the smallest size, which
also builds the dependencies, has no limit). Linearity: the CPU time per added step at
the largest size over that at the second largest, each counted from the smallest size,
((T(200) − T(1)) / 199) / ((T(50) − T(1)) / 49) for the default sizes: 1.0 is linear, 4.0
means a step costs four times as much in a chain four times as long.

Needs only python3 (3.11, for tomllib) and the toolchain (plus crates.io once, for statum);
prints Markdown tables on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parent.parent
RUNTIME = WORKSPACE / "flow-runtime"
# The statum release measured; the crates that come with it are the only ones allowed in a
# generated crate's lock beyond the workspace's own.
STATUM_VERSION = "0.9.0"
STATUM_CRATES = {"statum", "statum-core", "statum-macros"}

VARIANTS = ["plain", "hand", "macro", "expanded", "statum"]
RELEASE_VARIANTS = ["plain", "hand", "macro", "statum"]

# `allow(warnings)`: the pasted expansion would otherwise print ~100 warnings (an unused
# `step_ctx` per step, …) that rustc hides when the same code comes from the macro, and
# rendering them is not what this measures.
PRELUDE = """\
#![allow(warnings)]
use flow_runtime::prelude::*;
use std::convert::Infallible;
"""
PLAIN_PRELUDE = """\
#![allow(warnings)]
use std::convert::Infallible;
"""
STATUM_PRELUDE = """\
#![allow(warnings)]
use statum::{machine, state, transition};
use std::convert::Infallible;
"""

FLOW_DEP = f'flow-runtime = {{ path = "{RUNTIME}" }}'
STATUM_DEP = f'statum = "={STATUM_VERSION}"'
# The release crates' `main` runs the chain on a current-thread runtime (flow-runtime already
# enables `rt`, so for it this adds no feature).
TOKIO_DEP = 'tokio = { version = "1", features = ["rt"] }'
# `--opt-macros`: what README suggests for long workflows, the proc macro and the crates it is
# built from optimised in the dev profile (set in every generated crate, so all variants alike).
OPT_MACROS = """
[profile.dev.package.flow-macros]
opt-level = 3
[profile.dev.package.syn]
opt-level = 3
[profile.dev.package.quote]
opt-level = 3
[profile.dev.package.proc-macro2]
opt-level = 3
"""
# Set from `--opt-macros` before any crate is written.
PROFILE = ""
# A step's body: `x + 1`, or with `--bodies work` what a step that does some work looks like
# (string handling, a loop, a match, closures: 17 lines), in every variant alike.
BODIES = {
    "trivial": "        Ok(x.wrapping_add(1))",
    "work": """\
        // A step that does some work: format, split, collect, match, branch.
        let words: Vec<String> = format!("{x} {} {}", x * 2, x % 7)
            .split_whitespace()
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty())
            .collect();
        let mut total = 0u64;
        for (i, w) in words.iter().enumerate() {
            match w.parse::<u64>() {
                Ok(n) if n % 2 == 0 => total = total.wrapping_add(n / 2),
                Ok(n) => total = total.wrapping_add(n.wrapping_mul(3).wrapping_add(i as u64)),
                Err(_) => continue,
            }
        }
        let label = if total > 100 { "big" } else { "small" };
        let _summary = format!("{label}: {total} from {} words", words.len());
        Ok(x.wrapping_add(1).max(total % 2))""",
}
BODY = BODIES["trivial"]


def steps(n: int) -> str:
    """The N step functions of a linear workflow, with their `#[step]` attributes."""
    out = []
    for i in range(1, n + 1):
        if i == 1:
            attr = "entry"
        else:
            attr = f"after = s{i - 1}"
        if i == n:
            attr += ", exit"
        out.append(f"    #[step({attr})]")
        out.append(f"    pub async fn s{i}(x: u64) -> Result<u64, Infallible> {{")
        out.append(BODY)
        out.append("    }")
    return "\n".join(out)


def plain_fns(n: int) -> str:
    return "\n".join(line for line in steps(n).splitlines() if "#[step" not in line)


def macro_src(n: int) -> str:
    return f"{PRELUDE}\n#[workflow]\npub mod wf {{\n    use super::Infallible;\n\n{steps(n)}\n}}\n"


def hand_body(n: int) -> str:
    calls = "\n".join(f"        let x = s{i}(x).await?;" for i in range(1, n + 1))
    driver = (
        "    /// Runs every step in order.\n"
        "    pub async fn run(x: u64) -> Result<u64, Infallible> {\n"
        f"{calls}\n"
        "        Ok(x)\n"
        "    }"
    )
    return f"\npub mod wf {{\n    use super::Infallible;\n\n{plain_fns(n)}\n\n{driver}\n}}\n"


def hand_src(n: int) -> str:
    # The prelude import stays, so `hand` pays for the same `use` as `macro`.
    return PRELUDE + hand_body(n)


def plain_src(n: int) -> str:
    return PLAIN_PRELUDE + hand_body(n)


def statum_src(n: int) -> str:
    states = ", ".join(f"S{i}(u64)" for i in range(n + 1))
    out = [
        STATUM_PRELUDE,
        f"pub mod wf {{\n    use super::Infallible;\n\n{plain_fns(n)}\n}}\n",
        f"#[state]\npub enum ChainState {{ {states} }}\n",
        "#[machine]\npub struct Chain<ChainState> {}\n",
    ]
    for i in range(1, n + 1):
        # statum accepts `Result` only spelled out in full (or as a local alias).
        out.append(
            f"#[transition]\nimpl Chain<S{i - 1}> {{\n"
            f"    pub async fn s{i}(self) -> ::core::result::Result<Chain<S{i}>, Infallible> {{\n"
            f"        let x = wf::s{i}(self.state_data).await?;\n"
            "        Ok(self.transition_with(x))\n"
            "    }\n}\n"
        )
    calls = "\n".join(f"    let m = m.s{i}().await?;" for i in range(1, n + 1))
    out.append(
        "/// Runs every step in order.\n"
        "pub async fn run(x: u64) -> Result<u64, Infallible> {\n"
        "    let m = Chain::<S0>::builder().state_data(x).build();\n"
        f"{calls}\n"
        "    Ok(m.state_data)\n"
        "}\n"
    )
    return "\n".join(out)


EMPTY_SRC = "#![allow(warnings)]\nuse flow_runtime as _;\n"
EMPTY_PLAIN_SRC = "#![allow(warnings)]\n"

# What each release crate's `drive` runs: the chain once, its result checked by `main`.
RT = "tokio::runtime::Builder::new_current_thread().build().expect(\"a current-thread runtime\")"
DRIVERS = {
    "plain": "wf::run(x).await",
    "hand": "wf::run(x).await",
    "macro": "wf::Workflow::run(&Ctx::new(()), x).await",
    "statum": "run(x).await",
}


def release_src(variant: str, n: int) -> str:
    src = {"plain": plain_src, "hand": hand_src, "macro": macro_src, "statum": statum_src}[variant](n)
    return (
        f"{src}\n/// Runs the chain once.\npub fn drive(x: u64) -> u64 {{\n"
        f"    let rt = {RT};\n"
        f"    rt.block_on(async {{ {DRIVERS[variant]} }}).expect(\"the steps cannot fail\")\n}}\n"
    )


def deps_of(variant: str) -> list[str]:
    if variant in ("plain", "empty_plain"):
        return []
    if variant == "statum":
        return [STATUM_DEP]
    return [FLOW_DEP]


@dataclass
class Crate:
    name: str
    variant: str
    path: Path


def write_crate(root: Path, name: str, variant: str, src: str, deps: list[str], main: bool = False) -> Crate:
    crate = root / name
    (crate / "src").mkdir(parents=True, exist_ok=True)
    dep_lines = "\n".join(deps)
    (crate / "Cargo.toml").write_text(
        f"""[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
{dep_lines}

# Standalone: not part of any enclosing workspace.
[workspace]
{PROFILE}"""
    )
    # Same dependency versions as the workspace, so nothing is resolved or fetched anew
    # (`check_lock` verifies it after the first build).
    shutil.copy(WORKSPACE / "Cargo.lock", crate / "Cargo.lock")
    shutil.copy(WORKSPACE / "rust-toolchain.toml", crate / "rust-toolchain.toml")
    (crate / "src" / "lib.rs").write_text(src)
    if main:
        (crate / "src" / "main.rs").write_text(f"fn main() {{\n    println!(\"{{}}\", {name}::drive(7));\n}}\n")
    return Crate(name, variant, crate)


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


@dataclass
class Timed:
    wall: float
    cpu: float  # user + system, cargo and every process it waited for
    rss_mib: float  # peak resident memory of the biggest of them
    code: int | None  # None: killed at the timeout
    stderr: str
    stdout: str


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float | None = None) -> Timed:
    """Runs `cmd`, measuring it alone (wait4), killing its whole process group at `timeout`."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if killed.is_set():
            # rustc may outlive cargo for a moment; the group was killed as a whole.
            code = None
        else:
            code = proc.returncode
        out.seek(0)
        err.seek(0)
        return Timed(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, code, err.read(), out.read())


def cargo(crate: Crate, env: dict[str, str], args: list[str], timeout: float | None = None) -> Timed:
    cmd = ["cargo", *args]
    t = run_timed(cmd, crate.path, env, timeout)
    if t.code is None:
        return t
    if t.code != 0:
        sys.exit(f"`{' '.join(cmd)}` failed in {crate.path}:\n{t.stderr}")
    return t


def touch(path: Path) -> None:
    now = time.time()
    os.utime(path, (now, now))


def lock_packages(lock: Path) -> dict[str, set[str]]:
    """Registry packages of a Cargo.lock: name -> versions."""
    out: dict[str, set[str]] = {}
    for pkg in tomllib.loads(lock.read_text()).get("package", []):
        if "source" in pkg:
            out.setdefault(pkg["name"], set()).add(pkg["version"])
    return out


def check_lock(crate: Crate) -> None:
    """Every registry package the crate builds is at a version the workspace's lock pins."""
    ours = lock_packages(WORKSPACE / "Cargo.lock")
    for name, versions in lock_packages(crate.path / "Cargo.lock").items():
        if name in STATUM_CRATES and crate.variant == "statum":
            continue
        stray = versions - ours.get(name, set())
        if stray:
            sys.exit(
                f"{crate.path}/Cargo.lock has {name} {', '.join(sorted(stray))}, which the workspace's "
                f"Cargo.lock does not pin ({', '.join(sorted(ours.get(name, []))) or 'absent'}): "
                "the generated crates must build the workspace's dependency versions"
            )


def resolve_statum(root: Path, env: dict[str, str]) -> Path:
    """statum's lock: the workspace's, plus statum resolved once with the network."""
    probe = write_crate(root, "ct_statum_lock", "statum", "#![allow(warnings)]\nuse statum as _;\n", [STATUM_DEP])
    log(f"resolving statum ={STATUM_VERSION} on top of the workspace's Cargo.lock (needs crates.io once) ...")
    t = run_timed(["cargo", "fetch"], probe.path, env)
    if t.code != 0:
        sys.exit(
            f"could not resolve statum ={STATUM_VERSION} (`cargo fetch` in {probe.path}):\n{t.stderr}\n"
            "statum is fetched from crates.io once; without the network, leave it out: "
            "--variants plain hand macro expanded"
        )
    check_lock(probe)
    return probe.path / "Cargo.lock"


def fmt_ms(seconds: float | None) -> str:
    # `+ 0`: a difference that rounds to zero prints as 0, not -0.
    return "–" if seconds is None else f"{round(seconds * 1000) + 0:,} ms"


def fmt_s(seconds: float | None, timeout_min: float) -> str:
    if seconds is None:
        return f"> {timeout_min:g} min"
    return f"{seconds:.1f} s"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def build_crates(args: argparse.Namespace, root: Path, env: dict[str, str], release: bool) -> dict[str, Crate]:
    crates: dict[str, Crate] = {}
    if not release:
        crates["empty"] = write_crate(root, "ct_empty", "empty", EMPTY_SRC, [FLOW_DEP])
        crates["empty_plain"] = write_crate(root, "ct_empty_plain", "empty_plain", EMPTY_PLAIN_SRC, [])
    statum_lock = resolve_statum(root, env) if "statum" in args.variants else None
    gen = {"plain": plain_src, "hand": hand_src, "macro": macro_src, "statum": statum_src}
    for n in args.sizes:
        for v in args.variants:
            if v == "expanded":
                continue  # written from the macro's output below
            name = f"ct_{v}{n}"
            if release:
                crate = write_crate(root, name, v, release_src(v, n), [*deps_of(v), TOKIO_DEP], main=True)
            else:
                crate = write_crate(root, name, v, gen[v](n), deps_of(v))
            if v == "statum" and statum_lock:
                shutil.copy(statum_lock, crate.path / "Cargo.lock")
            crates[f"{v}{n}"] = crate
    return crates


def prebuild(
    crates: dict[str, Crate], env: dict[str, str], cmd: list[str], timeout: float | None, first: int = 0
) -> set[str]:
    """Builds every crate once (dependencies included); returns the ones that timed out.

    The crates of size `first` build the dependencies, which may take longer than a timed
    build is allowed to: they get no timeout."""
    slow = set()
    for key, crate in crates.items():
        log(f"  {crate.name} ...")
        small = key == f"{crate.variant}{first}"
        t = cargo(crate, env, cmd, None if small else timeout)
        if t.code is None:
            slow.add(key)
            continue
        check_lock(crate)
    return slow


def expansion(crate: Crate, env: dict[str, str]) -> str:
    """The macro's output, as printed by FLOW_MACROS_DEBUG=1 (`-q`: nothing else on stderr)."""
    touch(crate.path / "src" / "lib.rs")
    t = cargo(crate, {**env, "FLOW_MACROS_DEBUG": "1"}, ["check", "--offline", "-q", "--message-format=short"])
    text = t.stderr.strip()
    if "pub mod wf" not in text:
        sys.exit(f"no expansion on stderr (is FLOW_MACROS_DEBUG still supported?):\n{text[:2000]}")
    return text


def rustfmt(path: Path) -> None:
    # Only for readability of the pasted file and a stable line count.
    subprocess.run(["rustfmt", "--edition", "2024", str(path)], capture_output=True)


def warm_check(args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    crates = build_crates(args, root, env, release=False)
    log(f"building dependencies once into {args.target_dir} ...")
    prebuild(crates, env, ["check", "--offline"], None)

    lines: dict[int, int] = {}
    if "expanded" in args.variants:
        for n in args.sizes:
            src = expansion(crates[f"macro{n}"], env) if f"macro{n}" in crates else expansion(
                write_crate(root, f"ct_macro{n}", "macro", macro_src(n), [FLOW_DEP]), env
            )
            crate = write_crate(root, f"ct_expanded{n}", "expanded", f"{PRELUDE}\n{src}\n", [FLOW_DEP])
            rustfmt(crate.path / "src" / "lib.rs")
            lines[n] = len((crate.path / "src" / "lib.rs").read_text().splitlines())
            crates[f"expanded{n}"] = crate
            cargo(crate, env, ["check", "--offline"])
            check_lock(crate)

    walls: dict[str, list[float]] = {k: [] for k in crates}
    cpus: dict[str, list[float]] = {k: [] for k in crates}
    for r in range(args.runs):
        for key, crate in crates.items():
            touch(crate.path / "src" / "lib.rs")
            t = cargo(crate, env, ["check", "--offline"])
            walls[key].append(t.wall)
            cpus[key].append(t.cpu)
        log(f"round {r + 1}/{args.runs} (CPU ms): " + ", ".join(f"{k} {v[-1] * 1000:.0f}" for k, v in cpus.items()))

    wall = {k: median(v) for k, v in walls.items()}
    cpu = {k: median(v) for k, v in cpus.items()}
    g = lambda d, v, n: d.get(f"{v}{n}")  # noqa: E731

    print(
        f"Warm `cargo check` (touch src/lib.rs), user + system CPU time of cargo and rustc, median of "
        f"{args.runs} interleaved round{'s' * (args.runs != 1)}. No-op cost: a crate that only links flow-runtime "
        f"{fmt_ms(cpu['empty'])}, one with no dependency {fmt_ms(cpu['empty_plain'])}."
        + (" Every crate built with `--opt-macros` (flow-macros, syn, quote, proc-macro2 at opt-level 3)."
           if PROFILE else "")
        + (" Step bodies: 17 lines of work (`--bodies work`)." if BODY != BODIES["trivial"] else "")
        + "\n"
    )
    print(
        "| steps | plain Rust | hand-written + flow-runtime | `#[workflow]` | statum | macro / hand "
        "| macro / plain | statum / plain | macro / statum | (macro − hand) / step | expanded lines | lines / step |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        p, h, m, s = (g(cpu, v, n) for v in ("plain", "hand", "macro", "statum"))
        per = None if m is None or h is None else (m - h) / n
        ln = lines.get(n)
        print(
            f"| {n} | {fmt_ms(p)} | {fmt_ms(h)} | {fmt_ms(m)} | {fmt_ms(s)} | {ratio(m, h)} | {ratio(m, p)} "
            f"| {ratio(s, p)} | {ratio(m, s)} | {'–' if per is None else f'{per * 1000:.2f} ms'} "
            f"| {'–' if ln is None else f'{ln:,}'} | {'–' if ln is None else f'{ln / n:.0f}'} |"
        )
    print(
        f"\nThe same checks in wall time, medians (empty crates {fmt_ms(wall['empty'])}, "
        f"{fmt_ms(wall['empty_plain'])}); the expansion pasted as source splits the macro's cost:\n"
    )
    print(
        "| steps | plain Rust | hand-written + flow-runtime | `#[workflow]` | statum | expanded, pasted "
        "| macro / hand | macro − expanded (the proc macro) | expanded − hand (generated items) | expanded, CPU |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        p, h, m, s, e = (g(wall, v, n) for v in ("plain", "hand", "macro", "statum", "expanded"))
        d = lambda a, b: None if a is None or b is None else a - b  # noqa: E731
        print(
            f"| {n} | {fmt_ms(p)} | {fmt_ms(h)} | {fmt_ms(m)} | {fmt_ms(s)} | {fmt_ms(e)} | {ratio(m, h)} "
            f"| {fmt_ms(d(m, e))} | {fmt_ms(d(e, h))} | {fmt_ms(g(cpu, 'expanded', n))} |"
        )


def release_builds(args: argparse.Namespace, root: Path, env: dict[str, str]) -> None:
    variants = [v for v in args.variants if v in RELEASE_VARIANTS]
    args.variants = variants
    crates = build_crates(args, root, env, release=True)
    timeout = args.timeout * 60
    cmd = ["build", "--release", "--offline"]
    log(f"building every crate once in release, dependencies included, into {args.target_dir} ...")
    slow = prebuild(crates, env, cmd, timeout, first=args.sizes[0])
    for key, crate in crates.items():
        if key in slow:
            continue
        n = int(key.removeprefix(crate.variant))
        exe = Path(args.target_dir) / "release" / crate.name
        got = subprocess.run([str(exe)], capture_output=True, text=True).stdout.strip()
        if got != str(7 + n):
            sys.exit(f"{exe} printed {got!r}, expected {7 + n}: the {crate.variant} chain of {n} steps is wrong")

    walls: dict[str, list[float]] = {k: [] for k in crates}
    cpus: dict[str, list[float]] = {k: [] for k in crates}
    rss: dict[str, list[float]] = {k: [] for k in crates}
    for r in range(args.runs):
        for key, crate in crates.items():
            if key in slow:
                continue
            touch(crate.path / "src" / "lib.rs")
            t = cargo(crate, env, cmd, timeout)
            if t.code is None:
                slow.add(key)
                continue
            walls[key].append(t.wall)
            cpus[key].append(t.cpu)
            rss[key].append(t.rss_mib)
        log(
            f"round {r + 1}/{args.runs} (CPU s): "
            + ", ".join(f"{k} {'>' if k in slow else ''}{(v[-1] if v else timeout):.1f}" for k, v in cpus.items())
        )

    def med(d: dict[str, list[float]], key: str) -> float | None:
        return None if key in slow else median(d[key])

    print(
        f"`cargo build --release` after touching src/lib.rs (dependencies built), median of {args.runs} "
        f"interleaved round{'s' * (args.runs != 1)}: wall / user + system CPU / peak memory of one process (rustc). A build "
        f"is stopped after {args.timeout:g} min."
        + (" Step bodies: 17 lines of work (`--bodies work`)." if BODY != BODIES["trivial"] else "")
        + "\n"
    )
    print("| steps | " + " | ".join(f"{v}: wall | {v}: CPU | {v}: peak" for v in variants) + " |")
    print("|---:|" + "---:|" * (3 * len(variants)))
    for n in args.sizes:
        cells = []
        for v in variants:
            k = f"{v}{n}"
            w, c, m = med(walls, k), med(cpus, k), med(rss, k)
            cells += [
                fmt_s(w, args.timeout),
                fmt_s(c, args.timeout),
                "–" if m is None else f"{m:,.0f} MiB",
            ]
        print(f"| {n} | " + " | ".join(cells) + " |")
    sizes = sorted(args.sizes)
    if len(sizes) >= 3:
        a, b, z = sizes[0], sizes[-2], sizes[-1]
        print(
            f"\nLinearity, CPU time per added step at {z} steps over that at {b} "
            f"(each counted from {a}: ((T({z}) − T({a})) / {z - a}) / ((T({b}) − T({a})) / {b - a}); "
            "1.0 is linear):\n"
        )
        print("| " + " | ".join(variants) + " |")
        print("|" + "---:|" * len(variants))
        cells = []
        for v in variants:
            ta, tb, tz = (med(cpus, f"{v}{x}") for x in (a, b, z))
            if ta is None or tb is None:
                cells.append("–")
            elif tz is None:
                cells.append(f"> {((timeout - ta) / (z - a)) / ((tb - ta) / (b - a)):.1f} (timed out)")
            elif tb - ta <= 0:
                cells.append("– (no growth)")
            else:
                cells.append(f"{((tz - ta) / (z - a)) / ((tb - ta) / (b - a)):.2f}")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 200])
    ap.add_argument("--runs", type=int, help="timed builds per crate, median reported (default 11; 3 with --release)")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS, help="default: all")
    ap.add_argument("--release", action="store_true", help="time `cargo build --release` instead of warm checks")
    ap.add_argument("--timeout", type=float, default=15, help="minutes a release build may take (default 15)")
    ap.add_argument("--target-dir", default="/work/target-compile-time", help="shared by all generated crates")
    ap.add_argument("--keep", action="store_true", help="keep the generated crates and print where")
    ap.add_argument("--bodies", choices=sorted(BODIES), default="trivial",
                    help="each step's body: `x + 1` (default), or 17 lines of work")
    ap.add_argument("--opt-macros", action="store_true",
                    help="build flow-macros, syn, quote and proc-macro2 with opt-level 3 (README's tip)")
    args = ap.parse_args()
    if args.opt_macros and args.release:
        ap.error("--opt-macros sets the dev profile, for warm checks; it does nothing with --release")
    global PROFILE, BODY
    PROFILE = OPT_MACROS if args.opt_macros else ""
    BODY = BODIES[args.bodies]
    if args.runs is None:
        args.runs = 3 if args.release else 11

    env = {**os.environ, "CARGO_TARGET_DIR": args.target_dir, "CARGO_TERM_COLOR": "never"}
    env.pop("RUSTFLAGS", None)
    root = Path(tempfile.mkdtemp(prefix="flow-compile-time-"))
    try:
        if args.release:
            release_builds(args, root, env)
        else:
            warm_check(args, root, env)
    finally:
        if args.keep:
            log(f"crates kept in {root}")
        else:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
