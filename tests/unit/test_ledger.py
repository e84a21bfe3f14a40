import asyncio
import json
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from google.protobuf import json_format

from kantoku.planner.rights.ledger import (
    GENESIS_HASH,
    Ledger,
    entry_hash,
    verify_entries,
    verify_jsonl,
)
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.registry import ModelRegistry
from kantoku.v1 import common_pb2


def _record(shot: int) -> dict:
    record = common_pb2.ProvenanceRecord(step_id=f"step{shot}", kind="image", seed=2**40 + shot)
    record.model.CopyFrom(ModelRegistry().get("previz-v1").to_card())
    record.output.CopyFrom(common_pb2.AssetRef(sha256=f"{shot:064x}", media_type="image/png"))
    record.parameters.update({"guidance": 3.5, "prompt": "雨の夜 <b>"})
    return json_format.MessageToDict(record)


def _chain(tmp_path: Path, count: int = 5) -> tuple[Ledger, Path]:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.append("job1", "plan", data={"plan": {"shots": []}})
    for n in range(2, count + 1):
        ledger.append("job1", "image", shot_id=f"s{n:03d}", record=_record(n), cache_hit=n == 4)
    out = tmp_path / "ledger.jsonl"
    ledger.export_jsonl("job1", out)
    return ledger, out


def _rewrite(path: Path, edit) -> None:  # noqa: ANN001
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(e) + "\n" for e in edit(entries)))


def test_chain_of_five_verifies(tmp_path: Path) -> None:
    ledger, out = _chain(tmp_path)
    entries = ledger.entries("job1")
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert all(e["hash"] == entry_hash(e) for e in entries)
    assert entries[3]["cache_hit"] is True and entries[1]["shot_id"] == "s002"
    assert verify_entries(entries) == []
    assert verify_jsonl(out) == []
    assert [json.loads(line) for line in out.read_text().splitlines()] == entries


def test_edited_field_names_its_seq(tmp_path: Path) -> None:
    _, out = _chain(tmp_path)

    def edit(entries: list[dict]) -> list[dict]:
        entries[2]["record"]["model"]["rights"]["license"] = "MIT"
        return entries

    _rewrite(out, edit)
    problems = verify_jsonl(out)
    assert len(problems) == 1
    assert problems[0].startswith("seq 3:") and "hash mismatch" in problems[0]


def test_deleted_entry_breaks_the_link(tmp_path: Path) -> None:
    _, out = _chain(tmp_path)
    _rewrite(out, lambda entries: entries[:1] + entries[2:])
    problems = verify_jsonl(out)
    assert problems and all(p.startswith("seq 3:") for p in problems)
    assert any("prev_hash" in p and "removed" in p for p in problems)


def test_reordered_and_foreign_lines_are_named(tmp_path: Path) -> None:
    _, out = _chain(tmp_path)
    _rewrite(out, lambda entries: [entries[0], entries[2], entries[1], *entries[3:]])
    assert any(p.startswith("seq 3:") for p in verify_jsonl(out))
    out.write_text(out.read_text() + "not json\n")
    assert any(p.startswith("line 6:") for p in verify_jsonl(out))


def test_threads_append_a_valid_chain(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    start = threading.Barrier(50)

    def work(n: int) -> None:
        start.wait()
        ledger.append("job", "tts", shot_id=f"s{n:03d}", data={"n": n})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = ledger.entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 51))
    assert sorted(e["data"]["n"] for e in entries) == list(range(50))
    assert verify_entries(entries) == []


async def test_asyncio_tasks_append_a_valid_chain(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    await asyncio.gather(*(ledger.append_async("job", "motion", data={"n": n})
                           for n in range(20)))
    entries = ledger.entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 21))
    assert verify_entries(entries) == []


def _append_many(path: str, worker: int) -> None:
    ledger = Ledger(Path(path))
    for n in range(10):
        ledger.append("job", "video", data={"worker": worker, "n": n})


def test_processes_append_a_valid_chain(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    entries = Ledger(path).entries("job")
    assert [e["seq"] for e in entries] == list(range(1, 31))
    assert verify_entries(entries) == []


def test_jobs_have_their_own_chains(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for job in ("a", "b", "a"):
        ledger.append(job, "plan")
    assert [e["seq"] for e in ledger.entries("a")] == [1, 2]
    assert ledger.entries("b")[0]["prev_hash"] == GENESIS_HASH
    assert ledger.jobs() == ["a", "b"]
    mixed = ledger.entries("a") + ledger.entries("b")
    assert any("another job" in p for p in verify_entries(mixed))


def test_ledger_is_append_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.append("job", "plan")
    conn = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE entries SET body = '{}'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM entries")
    conn.close()


def test_default_path_is_in_kantoku_home(home: Path) -> None:
    assert Ledger().path == home.resolve() / "ledger.sqlite"


def test_unserializable_data_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with pytest.raises(KantokuError, match="JSON"):
        ledger.append("job", "plan", data={"when": object()})
    with pytest.raises(KantokuError, match="JSON"):
        ledger.append("job", "plan", data={"x": float("nan")})
    assert ledger.entries("job") == []
