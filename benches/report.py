#!/usr/bin/env python3
"""Markdown tables from the criterion results of `typestate` and `run_overhead` (its `trip` group too).

    CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench typestate -- --measurement-time 5 --sample-size 50
    CARGO_TARGET_DIR=/work/target-bench cargo bench -p flow-benches --bench run_overhead -- --measurement-time 5 --sample-size 50
    python3 benches/report.py            # reads $CARGO_TARGET_DIR/criterion (default /work/target-bench)

Every figure is criterion's median (`median.point_estimate` of the last run, in
`<target>/criterion/<group>/<bench>/new/estimates.json`); ratios and per-step costs are computed
from medians. A benchmark that has not been run shows as "–".
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "/work/target-bench"))
CRITERION = TARGET / "criterion"


def median_ns(group: str, bench: str) -> float | None:
    path = CRITERION / group / bench / "new" / "estimates.json"
    try:
        return json.loads(path.read_text())["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def ns(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} µs"
    return f"{value:.1f} ns"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a / b:.2f}"


def typestate() -> None:
    print("### Typestate API and `Workflow::run` against hand-written calls (10 linear steps)\n")
    print("| steps do | (a) typestate | (b) `run` | (c) hand-written | (a)/(c) | (b)/(c) "
          "| (a) − (c) per step | (b) − (c) per step |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for group, label in [("typestate_trivial10", "`x + 1`"), ("typestate_hash10", "SipHash of 4 KiB")]:
        a, b, c = (median_ns(group, x) for x in ("typestate", "run", "hand"))
        per = lambda x: ns(None if x is None or c is None else (x - c) / 10)  # noqa: E731
        print(f"| {label} | {ns(a)} | {ns(b)} | {ns(c)} | {ratio(a, c)} | {ratio(b, c)} | {per(a)} | {per(b)} |")
    print()


def run_overhead() -> None:
    print("### `Workflow::run` overhead per step (steps do `x + 1`)\n")
    print("| N | hand-written | `run` | `run` + `MemoryStore` | `run` per step: (run − hand) / N "
          "| per checkpoint: (store − run) / (N + 1) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in (10, 50):
        group = f"run_overhead_n{n}"
        h, r, s = (median_ns(group, x) for x in ("hand", "run", "run_store"))
        step = None if r is None or h is None else (r - h) / n
        # N step checkpoints and the run's start.
        cp = None if s is None or r is None else (s - r) / (n + 1)
        print(f"| {n} | {ns(h)} | {ns(r)} | {ns(s)} | {ns(step)} | {ns(cp)} |")
    print()


def trip() -> None:
    print("### The trip workflow end to end, a fresh `Ctx` per run, against plain async Rust\n")
    print("validate → search → choose → book (`flow_benches::trip`): garde rules on the request, a 16-byte "
          "struct between steps; `run` and `typestate` include building and dropping `Ctx::new(())`.\n")
    print("| plain async Rust | `Workflow::run` | typestate `Flow` | `Ctx::new` alone | run / plain "
          "| typestate / plain | (run − plain − ctx) / step | (typestate − plain − ctx) / step |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    p, r, t, c = (median_ns("trip", x) for x in ("plain", "run", "typestate", "ctx"))
    steps = 4
    per = lambda x: ns(None if x is None or p is None or c is None else (x - p - c) / steps)  # noqa: E731
    print(f"| {ns(p)} | {ns(r)} | {ns(t)} | {ns(c)} | {ratio(r, p)} | {ratio(t, p)} | {per(r)} | {per(t)} |")
    print()


def main() -> None:
    if not CRITERION.is_dir():
        sys.exit(f"no criterion results in {CRITERION}: run the benches first (see --help)")
    typestate()
    run_overhead()
    trip()


if __name__ == "__main__":
    main()
