"""Ledger appends from two processes at once, on the SQLite file and on Postgres.

Two OS processes each append N entries (a render step's size of record) to the same job, as two
planner or studio hosts would; the chain is then read back and verified. Prints appends per
second for each store and Postgres's ratio to SQLite, measured in the same run. The Postgres
server is pgserver's embedded PostgreSQL 16 on a Unix socket; a networked server adds its
round-trip time five times per append (begin, lock, read the head, insert, commit).
Each store runs `--rounds` times, alternating, on a fresh job each round; the median counts.
Run: .venv/bin/python bench/ledger_append.py [--appends 500] [--processes 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kantoku.planner.rights.ledger import open_ledger, verify_entries

APPENDER = """
import sys
from kantoku.planner.rights.ledger import open_ledger
url, job, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
record = {"model": {"id": "previz-v1", "weightsSha256": "0" * 64}, "seed": 7,
          "parameters": {"prompt": "a street at night, rain", "steps": 28},
          "output": {"sha256": "f" * 64, "mediaType": "image/png"}}
with open_ledger(url) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(count):
        ledger.append(job, "image", shot_id=f"s{n:03d}", record=record, data={"w": worker})
"""


def run(url: str, job: str, processes: int, appends: int) -> float:
    """Seconds from the start signal until every process has appended (and exited)."""
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, url, job, str(w), str(appends)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for w in range(processes)]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        if worker.wait() != 0:
            raise SystemExit("an appender failed")
    elapsed = time.perf_counter() - start
    with open_ledger(url) as ledger:
        entries = ledger.entries(job)
    assert len(entries) == processes * appends and verify_entries(entries) == [], "broken chain"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500, help="entries per process")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import pgserver

    work = Path(tempfile.mkdtemp(prefix="kantoku-bench-ledger-"))
    server = pgserver.get_server(work / "pg", cleanup_mode="delete")
    try:
        total = args.processes * args.appends
        urls = {"sqlite": str(work / "ledger.sqlite"), "postgres": server.get_uri()}
        times: dict[str, list[float]] = {name: [] for name in urls}
        for round_ in range(args.rounds):
            for name, url in urls.items():
                times[name].append(run(url, f"job{round_}", args.processes, args.appends))
        sqlite_s, postgres_s = (statistics.median(times[name]) for name in urls)
    finally:
        server.cleanup()
    print(f"{args.processes} processes x {args.appends} appends to one job, chain verified; "
          f"median of {args.rounds} rounds")
    for name, seconds in (("sqlite", sqlite_s), ("postgres", postgres_s)):
        print(f"  {name:9s} {total / seconds:8.0f} appends/s  "
              f"({seconds * 1000 / total:.2f} ms per append)")
    print(f"  postgres / sqlite throughput: {sqlite_s / postgres_s:.2f}x")


if __name__ == "__main__":
    main()
