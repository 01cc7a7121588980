#!/usr/bin/env python3
"""Warm `cargo check` of several crates, alternated round by round: A/B comparisons of the macro.

    python3 benches/compile_time.py --sizes 10 50 --variants hand macro --runs 1 --keep   # prints where
    # … the same from a checkout of the other commit (a `git worktree`), then:
    python3 benches/ab_check.py --runs 7 /tmp/A/ct_hand10 /tmp/B/ct_macro10 /tmp/A/ct_macro10

A measurement is what `compile_time.py` takes: touch src/lib.rs, `cargo check --offline`, user +
system CPU time of cargo and every rustc it ran (wait4's rusage). Each round checks every crate
once, in the order given, so load on a shared machine hits them alike. Prints each crate's median
and the median of its per-round ratio to the first crate, which cancels most of the drift between
rounds. Crates built against different checkouts can share one target directory (their
flow-runtime paths differ, so do their units).

`--instructions` counts instead the instructions of the crate's own rustc under callgrind (cargo
runs it through `RUSTC_WORKSPACE_WRAPPER`, so dependencies are untouched): the proc macro, name
resolution, loading, checking and saving the incremental state, everything but cargo itself. A
count is the same on every run of one toolchain on one machine (to within 0.1%), unlike CPU time
on a shared one, so one round after a settling build is enough and a change of 1% shows; it
leaves out cargo's own fixed cost (about 70 ms of CPU per check here), so a ratio of counts is
larger than the ratio of CPU times. Needs `valgrind`; about 10 s per crate at 50 steps.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compile_time import run_timed, touch


def check(crate: Path, env: dict[str, str]) -> float:
    """One warm check of `crate`, measured as `compile_time.py` measures: CPU milliseconds."""
    touch(crate / "src" / "lib.rs")
    t = run_timed(["cargo", "check", "--offline", "-q"], crate, env)
    if t.code != 0:
        sys.exit(f"`cargo check` failed in {crate}:\n{t.stderr}")
    return t.cpu * 1000


def instructions(crate: Path, env: dict[str, str]) -> int:
    """Instructions of `crate`'s rustc in one warm check (after one settling check under the
    same wrapper, which cargo counts in the unit's fingerprint)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        wrap = Path(tmp) / "wrap.sh"
        wrap.write_text(
            "#!/bin/sh\n"
            f'exec valgrind --tool=callgrind --log-file={tmp}/valgrind.log '
            f'--callgrind-out-file={out} "$@"\n'
        )
        wrap.chmod(0o755)
        wrapped = {**env, "RUSTC_WORKSPACE_WRAPPER": str(wrap)}
        for _ in range(2):
            touch(crate / "src" / "lib.rs")
            done = subprocess.run(["cargo", "check", "--offline", "-q"], cwd=crate, env=wrapped,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"`cargo check` failed in {crate}:\n{done.stderr}")
        match = re.search(r"(?:summary|totals): (\d+)", out.read_text())
        if not match:
            sys.exit(f"no totals in callgrind's output for {crate}")
        return int(match.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("crates", nargs="+", type=Path, help="crate directories; ratios are to the first")
    ap.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--target-dir", default="/work/target-compile-time", help="compile_time.py's default")
    ap.add_argument("--instructions", action="store_true",
                    help="count rustc's instructions under callgrind instead (one round)")
    args = ap.parse_args()
    env = {**os.environ, "CARGO_TARGET_DIR": args.target_dir}
    if args.instructions:
        counts = {}
        for crate in args.crates:
            counts[crate] = instructions(crate, env)
            print(f"{crate.name}: {counts[crate] / 1e6:.1f} M", file=sys.stderr)
        first = counts[args.crates[0]]
        print("| crate | rustc's instructions | ratio to the first |")
        print("|---|---:|---:|")
        for crate in args.crates:
            print(f"| {crate} | {counts[crate] / 1e6:.1f} M | {counts[crate] / first:.3f} |")
        return
    for crate in args.crates:  # build once, untimed
        check(crate, env)
    cpu: dict[Path, list[float]] = {c: [] for c in args.crates}
    for r in range(args.runs):
        started = time.time()
        for crate in args.crates:
            cpu[crate].append(check(crate, env))
        shown = ", ".join(f"{c.name} {cpu[c][-1]:.0f}" for c in args.crates)
        print(f"round {r + 1}/{args.runs} ({time.time() - started:.0f} s, CPU ms): {shown}", file=sys.stderr)
    first = cpu[args.crates[0]]
    print("| crate | CPU median | median of per-round ratio to the first |")
    print("|---|---:|---:|")
    for crate in args.crates:
        ratio = statistics.median(a / b for a, b in zip(cpu[crate], first))
        print(f"| {crate} | {statistics.median(cpu[crate]):.0f} ms | {ratio:.3f} |")


if __name__ == "__main__":
    main()
