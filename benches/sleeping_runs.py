#!/usr/bin/env python3
"""100,000 sleeping runs: a worker's resident memory stays at most 64 MiB.

    python3 benches/sleeping_runs.py                          # N = 100,000, 5 s of work
    python3 benches/sleeping_runs.py --runs 1000000 --seconds 10 --runtime current-thread
    python3 benches/sleeping_runs.py --dir /var/tmp --keep    # keep the store to look at it

Builds the `sleepers` binary (benches/src/bin/sleepers.rs) in release, in $CARGO_TARGET_DIR
(or cargo's default), then, in a new temporary directory:

  1. `sleepers populate runs.sqlite N`: starts N runs that each sleep 30 days in their first
     step, and runs an engine until every one is parked; prints how long that took;
  2. `sleepers work runs.sqlite SECONDS`, a fresh process: an engine over the store for
     SECONDS, with nothing due; prints VmRSS and VmHWM (the peak) from /proc/self/status.

Then checks the store with Python's sqlite3 (every run `running`, waking in the future) and
prints one line: the worker's VmRSS and VmHWM against 64 MiB (PASS needs VmHWM <= 64 MiB, no
run finished, and all N runs asleep), the populate time and the store's size on disk.

Needs only python3 (3.11) and the toolchain; progress goes to stderr, the summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT_KIB = 64 * 1024
MIB = 1024 * 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build() -> Path:
    """Builds `sleepers` in release and returns the path of the executable."""
    log("building sleepers (release)…")
    out = subprocess.run(
        ["cargo", "build", "--release", "-p", "flow-benches", "--bin", "sleepers",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "sleepers":
            return Path(message["executable"])
    sys.exit("cargo built no `sleepers` executable")


def run(exe: Path, *args: str) -> dict[str, str]:
    """Runs `exe args`, echoing its output to stderr, and returns its `key=value` lines."""
    log(f"$ {exe.name} {' '.join(args)}")
    done = subprocess.run([exe, *args], stdout=subprocess.PIPE, text=True)
    for line in done.stdout.splitlines():
        log(f"  {line}")
    if done.returncode != 0:
        sys.exit(f"`{exe.name} {' '.join(args)}` failed with status {done.returncode}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def check_store(db: Path) -> tuple[int, int]:
    """Runs in the store (any status), and runs asleep: `running`, due in the future."""
    now_ms = int(time.time() * 1000)
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        total = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        asleep = conn.execute(
            "SELECT count(*) FROM runs WHERE status = 'running' AND wake_at > ?", (now_ms,)
        ).fetchone()[0]
    return total, asleep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="sleeping runs (100000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long the worker runs (5)")
    parser.add_argument("--runtime", choices=["multi-thread", "current-thread"],
                        default="multi-thread", help="the worker's tokio runtime (multi-thread)")
    parser.add_argument("--dir", help="where to make the temporary directory (the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the store and say where")
    args = parser.parse_args()

    exe = build()
    tmp = tempfile.mkdtemp(prefix="flow-sleepers-", dir=args.dir)
    db = Path(tmp) / "runs.sqlite"
    try:
        populate = run(exe, "populate", str(db), str(args.runs))
        db_bytes, wal_bytes = size(db), size(Path(f"{db}-wal"))
        work = run(exe, "work", str(db), str(args.seconds), args.runtime)
        total, asleep = check_store(db)
    finally:
        if args.keep:
            log(f"kept {db}")
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            os.rmdir(tmp)

    rss, hwm = int(work["vm_rss_kib"]), int(work["vm_hwm_kib"])
    finished = int(work["finished"])
    seconds = float(populate["seconds"])
    ok = hwm <= LIMIT_KIB and finished == 0 and asleep == total == args.runs \
        and int(work["sleeping"]) == args.runs
    print(
        f"{args.runs} sleeping runs: worker ({args.runtime}, {args.seconds:g} s) "
        f"VmRSS {rss / 1024:.1f} MiB, VmHWM {hwm / 1024:.1f} MiB, limit {LIMIT_KIB // 1024} MiB: "
        f"{'PASS' if ok else 'FAIL'} | finished {finished}, asleep {asleep}/{total} | "
        f"populate {seconds:.1f} s ({args.runs / seconds:.0f} runs/s) | "
        f"store {db_bytes / MIB:.1f} MiB + WAL {wal_bytes / MIB:.1f} MiB"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
