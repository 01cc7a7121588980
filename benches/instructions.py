#!/usr/bin/env python3
"""Instructions per run of the `allocs` bench binary's drivers, counted by callgrind.

    cargo bench -p flow-benches --bench allocs --no-run     # prints the binary's path
    python3 benches/instructions.py BINARY [BINARY ...]     # every variant, each binary
    python3 benches/instructions.py --variants trip/run trip/ctx BINARY

For each variant, `BINARY VARIANT N` runs that driver N times (see `benches/allocs.rs`);
instructions per run are (I(3000) - I(1000)) / 2000, which cancels the process's start, the
runtime's construction and the first run's one-time work. Counts are exact and the same on
every run of one binary on one machine, unlike times on a shared one, so they are the figure
to compare two builds by; they differ between machines (CPU features change what libc runs),
so compare only counts made on the same machine.

Needs `valgrind` on the PATH.
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = [
    "trip/plain",
    "trip/ctx",
    "trip/run",
    "trip/typestate",
    "run_overhead_n10/run",
    "run_overhead_n50/run",
]
LOW, HIGH = 1000, 3000


def instructions(binary: str, variant: str, n: int) -> int:
    """Total instructions of one process running `variant` `n` times."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             binary, variant, str(n)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for line in out.read_text().splitlines():
            match = re.match(r"(?:summary|totals): (\d+)", line)
            if match:
                return int(match.group(1))
    raise RuntimeError(f"no totals in callgrind's output for {binary} {variant} {n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+", metavar="BINARY")
    parser.add_argument("--variants", nargs="+", default=VARIANTS)
    args = parser.parse_args()
    header = ["variant"] + [Path(b).name if len(args.binaries) == 1 else str(i + 1)
                            for i, b in enumerate(args.binaries)]
    print("| " + " | ".join(header) + " |")
    print("|---" + "|---:" * len(args.binaries) + "|")
    for variant in args.variants:
        row = [variant]
        for binary in args.binaries:
            per_run = (instructions(binary, variant, HIGH)
                       - instructions(binary, variant, LOW)) / (HIGH - LOW)
            row.append(f"{per_run:,.0f}")
        print("| " + " | ".join(row) + " |", flush=True)
    if len(args.binaries) > 1:
        for i, binary in enumerate(args.binaries):
            print(f"{i + 1}: {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
