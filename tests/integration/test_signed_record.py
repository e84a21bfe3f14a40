"""The job's signed record (record.json): every file and the ledger's head, so `rights verify`
names any file deleted, added, edited or swapped and any ledger entry removed, rewritten or
added, even with its hashes recomputed; and verifying elsewhere creates no key."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kantoku.planner.rights.ledger import GENESIS_HASH, SqliteLedger, entry_hash
from tests.conftest import make_song
from tests.integration.test_content_credentials import run_job
from tests.integration.test_jobs import kantoku

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("record")
    return run_job(folder / "out", "brief.yaml", make_song(folder / "song6.wav", 6))


@pytest.fixture
def job(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "job"))


def entries(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


def write_rehashed(out: Path, chain: list[dict[str, Any]]) -> None:
    """The chain written back with every seq, prev_hash and hash recomputed: a valid chain."""
    prev = GENESIS_HASH
    for seq, entry in enumerate(chain, start=1):
        entry.update(seq=seq, prev_hash=prev)
        entry["hash"] = prev = entry_hash(entry)
    (out / "ledger.jsonl").write_text("".join(json.dumps(e) + "\n" for e in chain))


def drop_last_entry(out: Path) -> None:
    lines = (out / "ledger.jsonl").read_text().splitlines(keepends=True)
    (out / "ledger.jsonl").write_text("".join(lines[:-1]))


def rewrite_last_entry(out: Path) -> None:
    chain = entries(out)
    chain[-1]["data"] = {"files": {}}
    write_rehashed(out, chain)


def rewrite_first_entry(out: Path) -> None:
    chain = entries(out)
    chain[0]["data"] = {"forged": True}
    write_rehashed(out, chain)


def extend_ledger(out: Path) -> None:
    chain = entries(out)
    write_rehashed(out, [*chain, {**chain[-1], "kind": "sign", "data": {"files": {}}}])


def another_jobs_ledger(out: Path) -> None:
    ledger = SqliteLedger(out.parent / "other.sqlite")
    for kind in ("plan", "policy", "sign"):
        ledger.append("job-other", kind, data={"n": 1})
    ledger.export_jsonl("job-other", out / "ledger.jsonl")


def edit(name: str) -> Callable[[Path], None]:
    def change(out: Path) -> None:
        (out / name).write_bytes((out / name).read_bytes().replace(b"e", b"E", 1))
    return change


def forge_record(out: Path) -> None:
    """The record made to vouch for an edited plan.json, with the old signature kept."""
    edit("plan.json")(out)
    document = json.loads((out / "record.json").read_text())
    document["record"]["files"]["plan.json"] = hashlib.sha256(
        (out / "plan.json").read_bytes()).hexdigest()
    (out / "record.json").write_text(json.dumps(document))


def swap_shots(out: Path) -> None:
    first, second = out / "shots" / "s001.png", out / "shots" / "s002.png"
    data = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(data)


TAMPERS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "last entry deleted": (drop_last_entry, ["ledger.jsonl: ", "entries were removed or added"]),
    "last entry rewritten, rehashed": (rewrite_last_entry,
                                       ["ledger.jsonl: its last entry is not the one the job "
                                        "signed; the chain was rewritten"]),
    "first entry rewritten, rehashed": (rewrite_first_entry,
                                        ["ledger.jsonl: its last entry is not the one"]),
    "ledger extended, rehashed": (extend_ledger, ["ledger.jsonl: ", "entries were removed or "
                                                  "added"]),
    "another job's ledger": (another_jobs_ledger, ["ledger.jsonl: 3 entries where the job "
                                                   "signed"]),
    "rights.json edited": (edit("rights.json"), ["rights.json: changed since the job signed it"]),
    "rights.html edited": (edit("rights.html"), ["rights.html: changed since the job signed it"]),
    "plan.json edited": (edit("plan.json"), ["plan.json: changed since the job signed it"]),
    "timeline.otio edited": (edit("timeline.otio"),
                             ["timeline.otio: changed since the job signed it"]),
    "shot deleted": (lambda out: (out / "shots" / "s003.mp4").unlink(),
                     ["shots/s003.mp4: missing"]),
    "shots swapped": (swap_shots, ["shots/s001.png: changed since the job signed it",
                                   "shots/s002.png: changed since the job signed it"]),
    "file added": (lambda out: shutil.copyfile(out / "video.mp4", out / "extra.mp4"),
                   ["extra.mp4: not part of the job's record"]),
    "song replaced": (lambda out: make_song(out / "song.wav", 5),
                      ["song.wav: changed since the job signed it"]),
    "record deleted": (lambda out: (out / "record.json").unlink(), ["record.json: missing"]),
    "record edited": (forge_record, ["record.json: its signature does not match it"]),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_verify_names_every_tampered_file(job: Path, tamper: str) -> None:
    change, expected = TAMPERS[tamper]
    change(job)

    checked = kantoku("rights", "verify", str(job))

    assert checked.returncode == 4, checked.stdout
    failures = [line for line in checked.stderr.splitlines() if line.startswith("FAIL")]
    for message in expected:
        assert any(message in line for line in failures), (message, checked.stderr)


def test_an_untouched_job_passes_and_folders_written_later_are_not_covered(job: Path) -> None:
    (job / "export").mkdir()
    (job / "export" / "timeline.xml").write_text("<xmeml/>")

    checked = kantoku("rights", "verify", str(job))

    assert checked.returncode == 0, checked.stderr
    assert "a CA you trust" in checked.stdout
    assert "not covered (written after the job): export, job.json" in checked.stdout


def test_verify_elsewhere_creates_no_key_and_trusts_the_ca_it_is_given(
        job: Path, home: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-home"
    env = {"KANTOKU_HOME": str(fresh)}

    untrusted = kantoku("rights", "verify", str(job), env=env)

    assert untrusted.returncode == 4
    [failure] = [line for line in untrusted.stderr.splitlines() if line.startswith("FAIL")]
    assert "signed by CN=kantoku signer, O=kantoku" in failure
    assert "not a CA you trust: pass --trust CHAIN.pem" in failure
    trusted = kantoku("rights", "verify", str(job), "--trust", str(home / "c2pa" / "ca.pem"),
                      env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert not fresh.exists() or not any(p.is_file() for p in fresh.rglob("*"))


def test_a_folder_that_mixes_two_jobs_is_named(job: Path) -> None:
    status = json.loads((job / "job.json").read_text())
    (job / "job.json").write_text(json.dumps({**status, "job_id": "job-other"}))

    checked = kantoku("rights", "verify", str(job))

    assert checked.returncode == 4
    assert "job.json: names job job-other, but the record is for" in checked.stderr
