#!/usr/bin/env python3
"""Warm `cargo check` time of a `#[workflow]` against the same steps written by hand.

    python3 benches/compile_time.py                     # sizes 1, 10, 50; 11 runs each
    python3 benches/compile_time.py --sizes 50 --runs 11

For each size N it generates, in a temporary directory, small crates that depend on
flow-runtime by path:

  hand      the N step functions of a linear workflow plus a hand-written driver that calls
            them in order (what you would write without the macro);
  macro     the same N functions in a `#[workflow]` module;
  expanded  the macro's output for that module (captured with FLOW_MACROS_DEBUG=1 and run
            through rustfmt), pasted in place of the attribute.

plus `empty`, a crate that only links flow-runtime: the fixed cost of starting cargo and
rustc, which every other figure includes.

All crates share one CARGO_TARGET_DIR, so flow-runtime and its dependencies are built once,
before any timing. A measurement is: touch src/lib.rs, run `cargo check`, take the wall time
and the user + system CPU time of cargo and the rustc it ran (from getrusage of children).
The crates are measured round-robin (empty, hand, macro, expanded, then again), so a burst of
load on a shared machine hits every variant alike; the table shows medians.

  macro / hand         what the macro costs in check time, all included;
  macro - expanded     the proc macro itself (parsing, checking, generating: the macro crate
                       is built with the dev profile, unoptimised, as users get it);
  expanded - hand      checking the extra items the macro generates (including the expansion
                       and checking of the serde derives it puts on `FlowState` and `Loops`).

Needs only python3 (3.11) and the toolchain; prints a Markdown table on stdout, progress on
stderr.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parent.parent
RUNTIME = WORKSPACE / "flow-runtime"

# `allow(warnings)`: the pasted expansion would otherwise print ~100 warnings (an unused
# `step_ctx` per step, …) that rustc hides when the same code comes from the macro, and
# rendering them is not what this measures.
PRELUDE = """\
#![allow(warnings)]
use flow_runtime::prelude::*;
use std::convert::Infallible;
"""


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
        out.append("        Ok(x.wrapping_add(1))")
        out.append("    }")
    return "\n".join(out)


def macro_src(n: int) -> str:
    return f"{PRELUDE}\n#[workflow]\npub mod wf {{\n    use super::Infallible;\n\n{steps(n)}\n}}\n"


def hand_src(n: int) -> str:
    fns = "\n".join(line for line in steps(n).splitlines() if "#[step" not in line)
    calls = "\n".join(f"        let x = s{i}(x).await?;" for i in range(1, n + 1))
    driver = (
        "    /// Runs every step in order.\n"
        "    pub async fn run(x: u64) -> Result<u64, Infallible> {\n"
        f"{calls}\n"
        "        Ok(x)\n"
        "    }"
    )
    # The prelude import stays, so `hand` pays for the same `use` as the others.
    return f"{PRELUDE}\npub mod wf {{\n    use super::Infallible;\n\n{fns}\n\n{driver}\n}}\n"


EMPTY_SRC = "#![allow(warnings)]\nuse flow_runtime as _;\n"


def write_crate(root: Path, name: str, src: str) -> Path:
    crate = root / name
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text(
        f"""[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
flow-runtime = {{ path = "{RUNTIME}" }}

# Standalone: not part of any enclosing workspace.
[workspace]
"""
    )
    # Same dependency versions as the workspace, so nothing is resolved or fetched anew.
    shutil.copy(WORKSPACE / "Cargo.lock", crate / "Cargo.lock")
    shutil.copy(WORKSPACE / "rust-toolchain.toml", crate / "rust-toolchain.toml")
    (crate / "src" / "lib.rs").write_text(src)
    return crate


def cargo_check(crate: Path, env: dict[str, str], extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["cargo", "check", "--offline", *(extra or [])]
    proc = subprocess.run(cmd, cwd=crate, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed in {crate}:\n{proc.stderr}")
    return proc


def touch(path: Path) -> None:
    now = time.time()
    os.utime(path, (now, now))


def children_cpu() -> float:
    """User + system CPU time of every child process waited for so far (cargo and its rustc)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_check(crate: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and user + system CPU time of one warm check."""
    touch(crate / "src" / "lib.rs")
    cpu = children_cpu()
    start = time.perf_counter()
    cargo_check(crate, env)
    return time.perf_counter() - start, children_cpu() - cpu


def expansion(crate: Path, env: dict[str, str]) -> str:
    """The macro's output, as printed by FLOW_MACROS_DEBUG=1 (`-q`: nothing else on stderr)."""
    touch(crate / "src" / "lib.rs")
    proc = cargo_check(crate, {**env, "FLOW_MACROS_DEBUG": "1"}, ["-q", "--message-format=short"])
    text = proc.stderr.strip()
    if "pub mod wf" not in text:
        sys.exit(f"no expansion on stderr (is FLOW_MACROS_DEBUG still supported?):\n{text[:2000]}")
    return text


def rustfmt(path: Path) -> None:
    # Only for readability of the pasted file; check time hardly depends on layout.
    subprocess.run(["rustfmt", "--edition", "2024", str(path)], capture_output=True)


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--runs", type=int, default=11, help="timed checks per crate (median reported)")
    ap.add_argument("--target-dir", default="/work/target-compile-time", help="shared by all generated crates")
    ap.add_argument("--keep", action="store_true", help="keep the generated crates and print where")
    args = ap.parse_args()

    env = {**os.environ, "CARGO_TARGET_DIR": args.target_dir, "CARGO_TERM_COLOR": "never"}
    env.pop("RUSTFLAGS", None)
    root = Path(tempfile.mkdtemp(prefix="flow-compile-time-"))
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    crates: dict[str, Path] = {"empty": write_crate(root, "ct_empty", EMPTY_SRC)}
    lines: dict[int, int] = {}
    for n in args.sizes:
        crates[f"hand{n}"] = write_crate(root, f"ct_hand{n}", hand_src(n))
        crates[f"macro{n}"] = write_crate(root, f"ct_macro{n}", macro_src(n))

    log(f"building dependencies once into {args.target_dir} ...")
    for name, crate in crates.items():
        cargo_check(crate, env)

    for n in args.sizes:
        expanded = expansion(crates[f"macro{n}"], env)
        crate = write_crate(root, f"ct_expanded{n}", f"{PRELUDE}\n{expanded}\n")
        rustfmt(crate / "src" / "lib.rs")
        lines[n] = len((crate / "src" / "lib.rs").read_text().splitlines())
        crates[f"expanded{n}"] = crate
        cargo_check(crate, env)

    times: dict[str, list[float]] = {name: [] for name in crates}
    cpus: dict[str, list[float]] = {name: [] for name in crates}
    for run in range(args.runs):
        for name, crate in crates.items():
            wall, cpu = timed_check(crate, env)
            times[name].append(wall)
            cpus[name].append(cpu)
        log(f"run {run + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1] * 1000:.0f}" for k, v in times.items()) + " (ms)")

    med = {name: statistics.median(ts) for name, ts in times.items()}
    cpu = {name: statistics.median(ts) for name, ts in cpus.items()}
    print(f"Warm `cargo check` (touch src/lib.rs), median of {args.runs} runs; "
          f"an empty crate that links flow-runtime: {fmt_s(med['empty'])}.\n")
    print("| steps | hand-written | `#[workflow]` | macro / hand | macro − hand | expanded, pasted "
          "| macro − expanded (expansion) | expanded − hand (generated items) | expanded lines |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        h, m, e = med[f"hand{n}"], med[f"macro{n}"], med[f"expanded{n}"]
        print(f"| {n} | {fmt_s(h)} | {fmt_s(m)} | {m / h:.2f} | {fmt_s(m - h)} | {fmt_s(e)} "
              f"| {fmt_s(m - e)} | {fmt_s(e - h)} | {lines[n]} |")
    print(f"\nThe same checks in user + system CPU time (cargo and rustc), medians; empty crate "
          f"{fmt_s(cpu['empty'])}:\n")
    print("| steps | hand-written | `#[workflow]` | macro / hand | expanded, pasted |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        h, m, e = cpu[f"hand{n}"], cpu[f"macro{n}"], cpu[f"expanded{n}"]
        print(f"| {n} | {fmt_s(h)} | {fmt_s(m)} | {m / h:.2f} | {fmt_s(e)} |")

    if args.keep:
        log(f"crates kept in {root}")
    else:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
