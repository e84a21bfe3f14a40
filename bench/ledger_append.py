"""Ledger appends from two processes at once, on the SQLite file and on Postgres.

Two OS processes each append N entries (a render step's size of record) to the same job, as two
planner or studio hosts would; the chain is then read back and verified. Prints appends per
second for each store and Postgres's ratio to SQLite, measured in the same run. The Postgres
server is pgserver's embedded PostgreSQL 16 on a Unix socket; a networked server adds its
round-trip time five times per append (begin, lock, read the head, insert, commit).
Run: .venv/bin/python bench/ledger_append.py [--appends 500] [--processes 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kantoku.planner.rights.ledger import open_ledger, verify_entries

APPENDER = """
import sys
from kantoku.planner.rights.ledger import open_ledger
url, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
record = {"model": {"id": "previz-v1", "weightsSha256": "0" * 64}, "seed": 7,
          "parameters": {"prompt": "a street at night, rain", "steps": 28},
          "output": {"sha256": "f" * 64, "mediaType": "image/png"}}
with open_ledger(url) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(count):
        ledger.append("job", "image", shot_id=f"s{n:03d}", record=record, data={"w": worker})
"""


def run(url: str, processes: int, appends: int) -> float:
    """Seconds from the start signal until every process has appended (and exited)."""
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, url, str(w), str(appends)],
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
        entries = ledger.entries("job")
    assert len(entries) == processes * appends and verify_entries(entries) == [], "broken chain"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500, help="entries per process")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    import pgserver

    work = Path(tempfile.mkdtemp(prefix="kantoku-bench-ledger-"))
    server = pgserver.get_server(work / "pg", cleanup_mode="delete")
    try:
        total = args.processes * args.appends
        sqlite_s = run(str(work / "ledger.sqlite"), args.processes, args.appends)
        postgres_s = run(server.get_uri(), args.processes, args.appends)
    finally:
        server.cleanup()
    print(f"{args.processes} processes x {args.appends} appends to one job, chain verified")
    for name, seconds in (("sqlite", sqlite_s), ("postgres", postgres_s)):
        print(f"  {name:9s} {total / seconds:8.0f} appends/s  "
              f"({seconds * 1000 / total:.2f} ms per append)")
    print(f"  postgres / sqlite throughput: {sqlite_s / postgres_s:.2f}x")


if __name__ == "__main__":
    main()
