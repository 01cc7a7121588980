#!/usr/bin/env python3
"""Tail latency of a durable step on SQLite: p50, p90, p99 per step of one sequential run.

    python3 benches/step_latency.py                       # 5 rounds of 5,000 steps, quiet
    python3 benches/step_latency.py --load                # the same beside a process that writes
                                                          # and fsyncs files (disk load)
    python3 benches/step_latency.py --exe A --exe B       # compare builds, rounds alternated

Builds the `step_latency` binary (benches/src/bin/step_latency.rs) in release, in
$CARGO_TARGET_DIR (or cargo's default), unless `--exe` names executables to run instead.
Each round runs every executable once, in turn, on a new store in a new temporary directory
(on the same file system as `--dir`, /tmp by default): one run of STEPS steps, each stored
in the file before the next starts. The binary prints its percentiles; this script prints
each round's, then, per executable, the median over the rounds of each percentile and of
p99 / p50 (target: at most 3).

`--load` starts, for the whole benchmark, a second process that loops: write 1 MiB to a
new file in the same directory, fsync it, delete it. That is the "other processes on the
same disk" of issue 11: their writes and journal commits queue in front of the store's.

Needs only python3 (3.11) and the toolchain; progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build() -> Path:
    """Builds `step_latency` in release and returns the path of the executable."""
    log("building step_latency (release)…")
    out = subprocess.run(
        ["cargo", "build", "--release", "-p", "flow-benches", "--bin", "step_latency",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "step_latency":
            return Path(message["executable"])
    sys.exit("cargo built no `step_latency` executable")


def disk_load(directory: str) -> None:
    """Writes, fsyncs and deletes 1 MiB files until killed."""
    block = os.urandom(1 << 20)
    path = os.path.join(directory, "load")
    while True:
        with open(path, "wb") as f:
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
        os.unlink(path)


def one_round(exe: Path, steps: int, directory: str) -> dict[str, int]:
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        out = subprocess.run([str(exe), os.path.join(tmp, "steps.sqlite"), str(steps)],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
    values = dict(line.split("=", 1) for line in out.split())
    return {k: int(values[k]) for k in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where the stores (and the load's files) go")
    parser.add_argument("--load", action="store_true",
                        help="a process writing and fsyncing 1 MiB files meanwhile")
    parser.add_argument("--exe", action="append", type=Path,
                        help="an executable to run instead of building (repeatable)")
    args = parser.parse_args()
    exes = args.exe or [build()]

    loader = None
    if args.load:
        loader = multiprocessing.Process(target=disk_load, args=(args.dir,), daemon=True)
        loader.start()
    results: dict[Path, list[dict[str, int]]] = {exe: [] for exe in exes}
    try:
        for n in range(args.rounds):
            for exe in exes:
                r = one_round(exe, args.steps, args.dir)
                results[exe].append(r)
                log(f"round {n + 1} {exe.name}: " + " ".join(f"{k}={r[k]}" for k in KEYS))
    finally:
        if loader is not None:
            loader.terminate()
            loader.join()

    load = "with disk load" if args.load else "no added load"
    print(f"{args.rounds} rounds of {args.steps} steps, {load}, "
          f"load average {os.getloadavg()[0]:.1f}; medians over rounds, µs:")
    for exe, rounds in results.items():
        med = {k: statistics.median(r[k] for r in rounds) for k in KEYS}
        ratio = statistics.median(r["p99_us"] / r["p50_us"] for r in rounds)
        verdict = "PASS" if ratio <= 3 else "FAIL"
        print(f"{exe.name}: p50 {med['p50_us']:.0f}  p90 {med['p90_us']:.0f}  "
              f"p99 {med['p99_us']:.0f}  p99.9 {med['p999_us']:.0f}  max {med['max_us']:.0f}  "
              f"p99/p50 {ratio:.1f} {verdict} (target <= 3)")


if __name__ == "__main__":
    main()
