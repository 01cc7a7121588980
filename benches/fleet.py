#!/usr/bin/env python3
"""Durable steps per second with 1, 2 and 4 worker processes on one PostgreSQL database.

    python3 benches/fleet.py                         # 1,000 runs x 10 steps, medians of 3
    python3 benches/fleet.py --repeat 5 --concurrency 64   # 64 runs in flight per worker
    python3 benches/fleet.py --workers 2 --no-sqlite --profile

Builds the `fleet_bench` binary (benches/src/bin/fleet_bench.rs) in release, in
$CARGO_TARGET_DIR (or cargo's default), then, in a new temporary directory:

  1. starts a throwaway PostgreSQL 15 cluster (/usr/lib/postgresql/15/bin, or $FLOW_PG_BIN)
     listening only on a Unix socket in that directory, made and run as user `nobody` when
     this script runs as root (initdb refuses root), with PostgreSQL's default durability:
     fsync on, synchronous_commit on, full_page_writes on. It is stopped at the end.
  2. for 1, 2 and 4 workers, `--repeat` times each, in a fresh database:
     `fleet_bench populate URL 1000` starts 1,000 runs of a 10-step workflow whose steps only
     add 1, then N processes `fleet_bench work URL CONCURRENCY` run them (CONCURRENCY runs in
     flight each: 1,000 / N unless `--concurrency` says, so all 1,000 at once), each an Engine with
     a worker name and its own leases, until no run is left unfinished. The time is from
     starting the workers until the last run's last checkpoint (the latest `history.at`):
     durable steps per second = 10,000 / that time. Around it, `pg_stat_wal.wal_sync` (reset
     with `pg_stat_reset_shared('wal')` before) gives the fsyncs of the WAL per step, and
     /proc the CPU time of the workers (their own count), of the server (the postmaster, its
     processes and those it reaped) and of everything else on the machine meanwhile (the
     machine's busy time from /proc/stat less those two: on a shared machine, what the
     figures competed with). The table also shows how the runs split between the workers.
  3. the same with 1 and 2 workers on one SQLite file (each repeat a new file).
  4. sequential step latency: one worker runs `--latency-runs` runs of the same workflow one
     after another (`fleet_bench latency`), every step timed from its beginning to the next
     step's (the step, its checkpoint, the driver): p50 and p90 in microseconds, with the
     same gaps read from the runs' histories (`RunHistory::steps`, millisecond times).

With `--profile`, one more 2-worker Postgres run with pg_stat_statements tracking (loaded
with the server, off elsewhere so that it costs the measured runs nothing) prints the
statements that took the server's time, the rows written per table (and how many updates
were HOT: no index entries written) and the WAL per step. Every run checks from the database that all runs
finished, each of the 10 steps once. Needs python3 (3.11), the toolchain and the PostgreSQL
15 server; progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(os.environ.get("FLOW_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "flow"
RUNS = 1000
STEPS = 10
TICK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build() -> Path:
    """Builds `fleet_bench` in release and returns the path of the executable."""
    log("building fleet_bench (release)…")
    out = subprocess.run(
        ["cargo", "build", "--release", "-p", "flow-benches", "--bin", "fleet_bench",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "fleet_bench":
            return Path(message["executable"])
    sys.exit("cargo built no `fleet_bench` executable")


def parse(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def run(exe: Path, *args: str) -> dict[str, str]:
    """Runs `exe args`, echoing its output to stderr, and returns its `key=value` lines."""
    log(f"$ {exe.name} {' '.join(args)}")
    done = subprocess.run([exe, *args], stdout=subprocess.PIPE, text=True)
    for line in done.stdout.splitlines():
        log(f"  {line}")
    if done.returncode != 0:
        sys.exit(f"`{exe.name} {' '.join(args)}` failed with status {done.returncode}")
    return parse(done.stdout)


def proc_ticks(pid: int) -> tuple[int, int, int]:
    """(parent pid, own CPU ticks, CPU ticks of the children it reaped) of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 4 (ppid), 14-15 (utime, stime), 16-17 (cutime, cstime) of the line.
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far (every CPU, every process), from
    /proc/stat: all but idle and iowait."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user).
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK


class PgCluster:
    """A throwaway PostgreSQL cluster on a Unix socket in `dir`, run as `nobody` when root."""

    def __init__(self, dir: Path) -> None:
        if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "postgres").is_file():
            sys.exit(f"the PostgreSQL 15 server is not installed: no initdb and postgres in "
                     f"{PG_BIN}; install it with `apt-get install -y postgresql-15` (or set "
                     f"FLOW_PG_BIN to the directory of its binaries)")
        self.dir = dir
        self.data = dir / "data"
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(dir, "nobody")
        log(f"initdb {self.data}")
        self.owner("initdb", "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C",
                   "-D", str(self.data))
        # Default durability (fsync, synchronous_commit, full_page_writes all on).
        # pg_stat_statements is loaded for `--profile`, tracking nothing unless a database
        # asks for it.
        options = (f"-k {dir} -c listen_addresses= -c max_connections=200 "
                   f"-c shared_preload_libraries=pg_stat_statements "
                   f"-c pg_stat_statements.track=none")
        self.owner("pg_ctl", "-D", str(self.data), "-l", str(dir / "log"), "-o", options,
                   "-w", "start")
        self.postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        settings = self.psql("postgres", "SELECT name || '=' || setting FROM pg_settings "
                             "WHERE name IN ('fsync', 'synchronous_commit', "
                             "'full_page_writes', 'wal_sync_method', 'server_version')")
        log(f"postgres up (pid {self.postmaster}): {', '.join(settings.splitlines())}")

    def owner(self, program: str, *args: str) -> None:
        """Runs a server program as the cluster's owner."""
        cmd = [str(PG_BIN / program), *args]
        if self.root:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            sys.exit(f"{program} failed:\n{done.stdout}")

    def stop(self) -> None:
        log("stopping postgres")
        self.owner("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://{USER}@localhost/{database}?host={self.dir}"

    def psql(self, database: str, sql: str) -> str:
        done = subprocess.run(
            [PG_BIN / "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
             "-U", USER, "-d", database, "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if done.returncode != 0:
            sys.exit(f"psql failed on `{sql}`: {done.stderr}")
        return done.stdout.strip()

    def cpu_seconds(self) -> float:
        """CPU time of the server so far: the postmaster, its live processes, and the
        processes it reaped (backends of workers that exited)."""
        _, own, reaped = proc_ticks(self.postmaster)
        total = own + reaped
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                ppid, ticks, _ = proc_ticks(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if ppid == self.postmaster:
                total += ticks
        return total / TICK


@dataclass
class Result:
    seconds: float        # from starting the workers to the last checkpoint
    worker_cpu: float     # CPU seconds of all workers
    server_cpu: float     # CPU seconds of PostgreSQL (0 for SQLite)
    other_cpu: float      # CPU seconds of everything else on the machine meanwhile
    fsyncs: int | None    # pg_stat_wal.wal_sync delta (None for SQLite)
    split: list[int]      # runs each worker finished

    @property
    def steps_per_second(self) -> float:
        return RUNS * STEPS / self.seconds


def start_workers(exe: Path, db: str, workers: int,
                  concurrency: int) -> tuple[float, float, list[int]]:
    """Runs `workers` worker processes on `db` until they exit; returns the wall time at
    which they were started, their CPU seconds and the runs each finished. Checks that
    together they finished every run."""
    log(f"$ {workers} x {exe.name} work {db} {concurrency}")
    began = time.time()
    procs = [subprocess.Popen([exe, "work", db, str(concurrency)], stdout=subprocess.PIPE,
                              text=True) for _ in range(workers)]
    finished: list[int] = []
    cpu = 0.0
    for proc in procs:
        out, _ = proc.communicate()
        report = parse(out)
        log("  " + " ".join(f"{k}={v}" for k, v in report.items() if k != "phase"))
        if proc.returncode != 0:
            sys.exit(f"a worker failed with status {proc.returncode}")
        finished.append(int(report["finished"]))
        cpu += float(report["cpu_seconds"])
    if sum(finished) != RUNS:
        sys.exit(f"the workers finished {sum(finished)} runs, not {RUNS}")
    return began, cpu, finished


CHECK_SQL = (
    "SELECT (SELECT count(*) FROM runs WHERE status = 'finished'), "
    "(SELECT count(*) FROM history WHERE step <> ''), "
    "(SELECT count(*) FROM (SELECT 1 FROM history WHERE step <> '' "
    " GROUP BY run_id, step HAVING count(*) > 1) AS again), "
    "(SELECT max(at) FROM history)"
)


def check(row: list[str]) -> float:
    """Checks the store's answer to CHECK_SQL and returns its last checkpoint's time (s)."""
    finished, steps, again, last = (int(x) for x in row)
    if (finished, steps, again) != (RUNS, RUNS * STEPS, 0):
        sys.exit(f"store: {finished} runs finished, {steps} steps in history, {again} "
                 f"steps recorded twice; expected {RUNS}, {RUNS * STEPS}, 0")
    return last / 1000


def pg_round(exe: Path, pg: PgCluster, name: str, workers: int, concurrency: int,
             profile: list[str] | None = None) -> Result:
    """One round on a new database; with `profile` (a list), pg_stat_statements tracks the
    workers' statements and its table is appended to the list."""
    pg.psql("postgres", f"CREATE DATABASE {name}")
    try:
        url = pg.url(name)
        run(exe, "populate", url, str(RUNS))
        # Starts each round from the same place: dirty pages written, WAL counters at 0.
        pg.psql(name, "CHECKPOINT")
        pg.psql(name, "SELECT pg_stat_reset_shared('wal')")
        if profile is not None:
            pg.psql(name, "CREATE EXTENSION pg_stat_statements")
            pg.psql("postgres", f"ALTER DATABASE {name} SET pg_stat_statements.track = 'top'")
            pg.psql(name, "SELECT pg_stat_statements_reset()")
        server_before = pg.cpu_seconds()
        busy_before = machine_busy_seconds()
        began, worker_cpu, split = start_workers(exe, url, workers, concurrency)
        busy = machine_busy_seconds() - busy_before
        fsyncs = int(pg.psql(name, "SELECT wal_sync FROM pg_stat_wal"))
        time.sleep(0.3)  # the workers' backends exit and are reaped
        server_cpu = pg.cpu_seconds() - server_before
        last = check(pg.psql(name, CHECK_SQL).split("|"))
        result = Result(last - began, worker_cpu, server_cpu,
                        max(busy - worker_cpu - server_cpu, 0.0), fsyncs, split)
        log(f"  {result.steps_per_second:.0f} steps/s, {fsyncs / (RUNS * STEPS):.3f} "
            f"fsyncs/step, CPU: workers {worker_cpu:.2f} s, server {server_cpu:.2f} s, "
            f"other processes {result.other_cpu:.2f} s")
        if profile is not None:
            profile.append(statements(pg, name))
            profile.append(writes(pg, name))
        return result
    finally:
        pg.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def statements(pg: PgCluster, name: str) -> str:
    """The statements that took the server's time in database `name`, as a table."""
    rows = pg.psql(name, (
        "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3), "
        "round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1), "
        "regexp_replace(left(query, 90), '\\s+', ' ', 'g') "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
        f"WHERE datname = '{name}') ORDER BY total_exec_time DESC LIMIT 8"
    ))
    lines = ["pg_stat_statements, one 2-worker round (server time executing each statement):",
             f"{'calls':>7} {'total ms':>9} {'mean ms':>8} {'%':>5}  statement"]
    for row in rows.splitlines():
        calls, total, mean, share, query = row.split("|", 4)
        lines.append(f"{calls:>7} {total:>9} {mean:>8} {share:>5}  {query}")
    return "\n".join(lines)


def writes(pg: PgCluster, name: str) -> str:
    """What the round wrote: rows per table (with the updates PostgreSQL made HOT, which
    write no index entry), and the WAL per step."""
    tables = pg.psql(name, (
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, "
        "(SELECT count(*) FROM pg_indexes i WHERE i.tablename = t.relname) "
        "FROM pg_stat_user_tables t WHERE n_tup_ins + n_tup_upd > 0 "
        "AND relname NOT LIKE '\\_sqlx%' ORDER BY relname"
    ))
    lines = [f"rows written (populate included): {'table':<10}{'inserts':>9}{'updates':>9}"
             f"{'HOT':>7}{'indexes':>9}"]
    for row in tables.splitlines():
        table, ins, upd, hot, indexes = row.split("|")
        lines.append(f"{'':<33}{table:<10}{ins:>9}{upd:>9}{hot:>7}{indexes:>9}")
    records, fpi, size = pg.psql(
        name, "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").split("|")
    steps = RUNS * STEPS
    lines.append(f"WAL of the workers' round: {int(records) / steps:.1f} records, "
                 f"{int(size) / steps:.0f} bytes and {int(fpi) / steps:.3f} full-page "
                 f"images per step")
    return "\n".join(lines)


def sqlite_round(exe: Path, dir: Path, name: str, workers: int, concurrency: int) -> Result:
    db = dir / f"{name}.sqlite"
    try:
        run(exe, "populate", str(db), str(RUNS))
        # `populate` exits without closing the file, so its last commits are in the WAL.
        # Workers that open such a file at the same instant sometimes see it without them
        # (one worker finds no run and does nothing; seen with 2 workers, about half the
        # time): one connection first recovers the WAL, so that the figure is 2 workers'.
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("SELECT count(*) FROM runs").fetchone()
        busy_before = machine_busy_seconds()
        began, worker_cpu, split = start_workers(exe, str(db), workers, concurrency)
        busy = machine_busy_seconds() - busy_before
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            last = check([str(x) for x in conn.execute(CHECK_SQL).fetchone()])
        result = Result(last - began, worker_cpu, 0.0, max(busy - worker_cpu, 0.0), None,
                        split)
        log(f"  {result.steps_per_second:.0f} steps/s, CPU: workers {worker_cpu:.2f} s, "
            f"other processes {result.other_cpu:.2f} s")
        return result
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)


def median(results: list[Result]) -> Result:
    """The round of median throughput (its other figures with it)."""
    return sorted(results, key=lambda r: r.seconds)[len(results) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure (3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                        help="worker processes on PostgreSQL (1 2 4)")
    parser.add_argument("--sqlite-workers", type=int, nargs="+", default=[1, 2],
                        help="worker processes on SQLite (1 2)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--concurrency", type=int,
                        help="runs in flight per worker (default: 1,000 / workers, so that "
                             "all 1,000 runs are in flight at once)")
    parser.add_argument("--latency-runs", type=int, default=20,
                        help="runs, one after another, for the step latency (20)")
    parser.add_argument("--profile", action="store_true",
                        help="one more 2-worker round with pg_stat_statements")
    parser.add_argument("--dir", help="where to make the temporary directory (the system's)")
    args = parser.parse_args()

    def per_worker(workers: int) -> int:
        return args.concurrency or -(-RUNS // workers)

    exe = build()
    tmp = Path(tempfile.mkdtemp(prefix="flow-fleet-", dir=args.dir))
    rows: list[tuple[str, int, Result]] = []
    latency: dict[str, dict[str, str]] = {}
    pg = None
    profile: list[str] = []
    try:
        pg = PgCluster(tmp)
        for workers in args.workers:
            results = [pg_round(exe, pg, f"fleet_w{workers}_r{r}", workers,
                                per_worker(workers)) for r in range(args.repeat)]
            rows.append(("postgres", workers, median(results)))
        pg.psql("postgres", "CREATE DATABASE fleet_latency")
        latency["postgres"] = run(exe, "latency", pg.url("fleet_latency"),
                                  str(args.latency_runs))
        if not args.no_sqlite:
            for workers in args.sqlite_workers:
                results = [sqlite_round(exe, tmp, f"fleet-w{workers}-r{r}", workers,
                                        per_worker(workers)) for r in range(args.repeat)]
                rows.append(("sqlite", workers, median(results)))
            latency["sqlite"] = run(exe, "latency", str(tmp / "latency.sqlite"),
                                    str(args.latency_runs))
        if args.profile:
            pg_round(exe, pg, "fleet_profile", 2, per_worker(2), profile=profile)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{RUNS} runs x {STEPS} steps, all started before the workers; "
          f"{args.concurrency or f'{RUNS:,} / workers'} runs in flight per worker; "
          f"median of {args.repeat} "
          f"(by time); {os.cpu_count()} CPUs")
    print(f"{'store':<9}{'workers':>8}{'steps/s':>9}{'time s':>8}{'fsyncs/step':>12}"
          f"{'worker CPU s':>13}{'server CPU s':>13}{'other CPU s':>12}  runs per worker")
    for store, workers, r in rows:
        fsyncs = f"{r.fsyncs / (RUNS * STEPS):.3f}" if r.fsyncs is not None else "-"
        server = f"{r.server_cpu:.2f}" if store == "postgres" else "-"
        print(f"{store:<9}{workers:>8}{r.steps_per_second:>9.0f}{r.seconds:>8.2f}"
              f"{fsyncs:>12}{r.worker_cpu:>13.2f}{server:>13}{r.other_cpu:>12.2f}  "
              f"{'/'.join(str(n) for n in r.split)}")
    print(f"\nsequential step latency (1 worker, {args.latency_runs} runs of {STEPS} steps "
          f"one after another; step start to next step start):")
    for store, figures in latency.items():
        print(f"{store:<9} p50 {int(figures['p50_us']):>6} µs  p90 {int(figures['p90_us']):>6} µs"
              f"  ({figures['gaps']} gaps; history checkpoints: p50 "
              f"{figures['history_p50_ms']} ms, p90 {figures['history_p90_ms']} ms)")
    for table in profile:
        print(f"\n{table}")
    two = [r for store, w, r in rows if store == "postgres" and w == 2]
    if two:
        rate = two[0].steps_per_second
        print(f"\ntarget >= 10,000 durable steps/s with 2 workers on PostgreSQL: "
              f"{rate:.0f} ({'met' if rate >= 10_000 else 'not met'})")


if __name__ == "__main__":
    main()
