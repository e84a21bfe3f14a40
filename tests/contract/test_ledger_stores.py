"""One suite every ledger store passes: the SQLite file and Postgres (a real server).

Each test gets an empty store through `open_ledger(url)`, the factory the product uses: a
fresh SQLite file, or a fresh schema on the session's Postgres server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from google.protobuf import json_format

from kantoku.planner.rights.ledger import (
    GENESIS_HASH,
    SqliteLedger,
    entry_hash,
    open_ledger,
    verify_entries,
    verify_jsonl,
)
from kantoku.planner.rights.ledger_postgres import PostgresLedger
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry
from kantoku.v1 import common_pb2
from tests.conftest import postgres_schema

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]

#: A python that appends `count` entries to `job` of the ledger at `url` (argv 1-4).
APPENDER = """
import sys
from kantoku.planner.rights.ledger import open_ledger
url, job, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open_ledger(url) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()  # every appender starts at once
    for n in range(count):
        ledger.append(job, "video", data={"worker": worker, "n": n})
"""


@pytest.fixture(params=STORES)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite")
    return postgres_schema(request.getfixturevalue("postgres_url"))


@pytest.fixture
def ledger(ledger_url: str):  # noqa: ANN201
    with open_ledger(ledger_url) as opened:
        yield opened


def _record(shot: int) -> dict:
    record = common_pb2.ProvenanceRecord(step_id=f"step{shot}", kind="image", seed=2**40 + shot)
    record.model.CopyFrom(ModelRegistry().get("previz-v1").to_card())
    record.output.CopyFrom(common_pb2.AssetRef(sha256=f"{shot:064x}", media_type="image/png"))
    record.parameters.update({"guidance": 3.5, "prompt": "雨の夜 <b>"})
    return json_format.MessageToDict(record)


def test_the_factory_picks_the_store(ledger_url: str, ledger) -> None:  # noqa: ANN001
    expected = PostgresLedger if ledger_url.startswith("postgresql://") else SqliteLedger
    assert type(ledger) is expected


def test_chain_of_five_verifies_and_exports(ledger, tmp_path: Path) -> None:  # noqa: ANN001
    ledger.append("job1", "plan", data={"plan": {"shots": []}})
    for n in range(2, 6):
        ledger.append("job1", "image", shot_id=f"s{n:03d}", record=_record(n), cache_hit=n == 4)
    entries = ledger.entries("job1")
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert all(e["hash"] == entry_hash(e) for e in entries)
    assert entries[3]["cache_hit"] is True and entries[1]["shot_id"] == "s002"
    assert entries[1]["record"]["parameters"]["prompt"] == "雨の夜 <b>"
    assert verify_entries(entries) == []
    out = tmp_path / "export" / "ledger.jsonl"
    assert ledger.export_jsonl("job1", out) == 5
    assert verify_jsonl(out) == []
    assert [json.loads(line) for line in out.read_text().splitlines()] == entries


def test_threads_append_a_valid_chain(ledger) -> None:  # noqa: ANN001
    start = threading.Barrier(20)

    def work(n: int) -> None:
        start.wait()
        ledger.append("job", "tts", shot_id=f"s{n:03d}", data={"n": n})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = ledger.entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 21))
    assert sorted(e["data"]["n"] for e in entries) == list(range(20))
    assert verify_entries(entries) == []


async def test_asyncio_tasks_append_a_valid_chain(ledger) -> None:  # noqa: ANN001
    await asyncio.gather(*(ledger.append_async("job", "motion", data={"n": n})
                           for n in range(20)))
    entries = ledger.entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 21))
    assert verify_entries(entries) == []


def test_two_processes_append_one_chain(ledger_url: str, ledger) -> None:  # noqa: ANN001
    count = 25
    workers = [subprocess.Popen([sys.executable, "-c", APPENDER, ledger_url, "job", str(w),
                                 str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True) for w in range(2)]
    for worker in workers:  # both are connected before either appends
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    entries = ledger.entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 2 * count + 1))
    assert sorted((e["data"]["worker"], e["data"]["n"]) for e in entries) == \
        [(str(w), n) for w in range(2) for n in range(count)]
    assert verify_entries(entries) == []


def test_jobs_have_their_own_chains(ledger) -> None:  # noqa: ANN001
    for job in ("a", "b", "a"):
        ledger.append(job, "plan")
    assert [e["seq"] for e in ledger.entries("a")] == [1, 2]
    assert ledger.entries("b")[0]["prev_hash"] == GENESIS_HASH
    assert ledger.entries("unknown") == []
    assert ledger.jobs() == ["a", "b"]
    mixed = ledger.entries("a") + ledger.entries("b")
    assert any("another job" in p for p in verify_entries(mixed))


def test_stored_entries_cannot_be_changed(ledger_url: str, ledger) -> None:  # noqa: ANN001
    ledger.append("job", "plan")
    statements = ["UPDATE {table} SET body = '{{}}'", "DELETE FROM {table}"]
    if ledger_url.startswith("postgresql://"):  # SQLite has no TRUNCATE
        statements.append("TRUNCATE {table}")
    for statement in statements:
        assert "append-only" in _refusal(ledger_url, statement)
    assert len(ledger.entries("job")) == 1


def test_unserializable_data_is_refused(ledger) -> None:  # noqa: ANN001
    with pytest.raises(KantokuError, match="JSON"):
        ledger.append("job", "plan", data={"when": object()})
    with pytest.raises(KantokuError, match="JSON"):
        ledger.append("job", "plan", data={"x": float("nan")})
    with pytest.raises(KantokuError, match="empty"):
        ledger.append("", "plan")
    assert ledger.entries("job") == []


@pytest.mark.integration
def test_an_unreachable_server_is_named_by_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]'")
    monkeypatch.setenv("KANTOKU_LEDGER_URL", "postgresql://kantoku:secret@127.0.0.1:1/ledger")
    with pytest.raises(KantokuError) as caught:
        open_ledger()
    error = caught.value
    assert error.category is Category.UNAVAILABLE and error.reason == "LEDGER_UNAVAILABLE"
    assert "KANTOKU_LEDGER_URL" in error.message and "127.0.0.1:1" in error.message
    assert "secret" not in error.message


def _refusal(url: str, statement: str) -> str:
    """The error a direct `statement` on the store's table gets ('' when it is accepted)."""
    if not url.startswith("postgresql://"):
        import sqlite3

        with sqlite3.connect(url) as connection:
            try:
                connection.execute(statement.format(table="entries"))
            except sqlite3.DatabaseError as exc:
                return str(exc)
        return ""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement.format(table="kantoku_ledger"))
        except psycopg.Error as exc:
            return str(exc)
    return ""
