import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from kantoku.planner.rights.ledger import (
    GENESIS_HASH,
    LedgerSettings,
    SqliteLedger,
    entry_hash,
    ledger_location,
    open_ledger,
    verify_entries,
    verify_jsonl,
)
from kantoku.planner.rights.ledger_postgres import redact
from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.settings import core_settings
from kantoku.v1 import common_pb2


def _record(shot: int) -> dict:
    record = common_pb2.ProvenanceRecord(step_id=f"step{shot}", kind="image", seed=2**40 + shot)
    record.model.CopyFrom(ModelRegistry().get("previz-v1").to_card())
    record.output.CopyFrom(common_pb2.AssetRef(sha256=f"{shot:064x}", media_type="image/png"))
    record.parameters.update({"guidance": 3.5, "prompt": "雨の夜 <b>"})
    return json_format.MessageToDict(record)


def _chain(tmp_path: Path, count: int = 5) -> tuple[SqliteLedger, Path]:
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
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


def test_default_path_is_in_kantoku_home(home: Path) -> None:
    assert SqliteLedger().path == home.resolve() / "ledger.sqlite"


def test_the_ledger_is_a_file_in_kantoku_home_unless_a_setting_says_otherwise(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANTOKU_LEDGER_URL", raising=False)
    monkeypatch.delenv("KANTOKU_CHECKPOINT_URL", raising=False)
    with open_ledger() as ledger:
        assert isinstance(ledger, SqliteLedger) and ledger.path == home / "ledger.sqlite"
    # A SQLite checkpoint file is not the ledger's.
    monkeypatch.setenv("KANTOKU_CHECKPOINT_URL", str(tmp_path / "jobs.sqlite"))
    assert ledger_location() == (str(home / "ledger.sqlite"), "KANTOKU_HOME")
    monkeypatch.setenv("KANTOKU_LEDGER_URL", str(tmp_path / "mine.sqlite"))
    with open_ledger() as ledger:
        assert isinstance(ledger, SqliteLedger) and ledger.path == tmp_path / "mine.sqlite"


def test_a_postgres_checkpoint_url_is_the_ledgers_unless_it_has_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoints, ledger = "postgresql://k@db/jobs", "postgresql://k@ledger-db/rights"
    monkeypatch.delenv("KANTOKU_LEDGER_URL", raising=False)
    monkeypatch.setenv("KANTOKU_CHECKPOINT_URL", checkpoints)
    assert ledger_location() == (checkpoints, "KANTOKU_CHECKPOINT_URL")
    monkeypatch.setenv("KANTOKU_LEDGER_URL", ledger)
    assert ledger_location() == (ledger, "KANTOKU_LEDGER_URL")
    assert ledger_location(LedgerSettings(ledger_url="", checkpoint_url="")) == \
        (str(core_settings().home_dir / "ledger.sqlite"), "KANTOKU_HOME")


def test_passwords_are_left_out_of_messages() -> None:
    assert redact("postgresql://kantoku:s3cret@db:5432/k") == "postgresql://kantoku:***@db:5432/k"
    assert redact("postgresql://db/k?host=/run") == "postgresql://db/k?host=/run"
    assert redact("postgresql://db/k?password=s3cret&host=/run") == \
        "postgresql://db/k?password=***&host=/run"
