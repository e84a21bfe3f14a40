"""Checkpoints and the ledger in a real PostgreSQL server: a job pauses at review and resumes
from checkpoints that live in Postgres, not in the default jobs.sqlite, and its ledger (which
follows KANTOKU_CHECKPOINT_URL when it has no URL of its own) is there too and verifies.

The server is the session's `postgres_url` (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from kantoku.services._core.errors import Category
from tests.integration.test_jobs import job_id, kantoku

# `server as server`: the module fixture from test_jobs (`kantoku serve ... --standalone`).
from tests.integration.test_jobs import server as server

pytestmark = pytest.mark.integration
pytest.importorskip("langgraph.checkpoint.postgres", reason="pip install -e '.[postgres]'")


def _checkpoint_rows(url: str, thread_id: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s",
                                 (thread_id,)).fetchone()
    assert row is not None
    return int(row[0])


def _sqlite_rows(path: Path, thread_id: str) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        tables = {name for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "checkpoints" not in tables:
            return 0
        (count,) = connection.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?",
                                      (thread_id,)).fetchone()
    return int(count)


def _ledger_entries(url: str, job: str) -> list[dict]:
    from kantoku.planner.rights.ledger import open_ledger

    with open_ledger(url) as ledger:
        return ledger.entries(job)


def test_a_job_pauses_and_resumes_from_checkpoints_and_ledger_in_postgres(
        server: str, postgres_url: str, tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump({
        "title": "Platform", "logline": "Aki waits for the first train", "duration_s": 3,
        "seed": 11, "locations": ["station"],
        "characters": [{"name": "Aki", "description": "red jacket"}]}))
    out = tmp_path / "out"
    home = Path(os.environ["KANTOKU_HOME"])
    env = {"KANTOKU_CHECKPOINT_URL": postgres_url}

    paused = kantoku("mv", str(path), "--out", str(out), "--server", server, env=env)
    assert paused.returncode == 3, paused.stderr
    assert json.loads((out / "job.json").read_text())["status"] == "awaiting_review"
    assert not (out / "video.mp4").exists()
    job = job_id(out)
    assert _checkpoint_rows(postgres_url, job) > 0
    before = _ledger_entries(postgres_url, job)
    assert "plan" in [e["kind"] for e in before]

    # A ledger that cannot be reached stops the job before any work, naming the setting.
    unreachable = kantoku("resume", job, "--yes", "--server", server,
                          env={**env, "KANTOKU_LEDGER_URL": "postgresql://kantoku@127.0.0.1:1/k"})
    assert unreachable.returncode == Category.UNAVAILABLE.exit_code, unreachable.stderr
    assert "KANTOKU_LEDGER_URL" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    assert json.loads((out / "job.json").read_text())["status"] == "awaiting_review"
    assert _ledger_entries(postgres_url, job) == before

    approved = kantoku("resume", job, "--yes", "--server", server, env=env)
    assert approved.returncode == 0, approved.stderr
    assert (out / "video.mp4").is_file()
    assert json.loads((out / "job.json").read_text())["status"] == "done"
    assert _checkpoint_rows(postgres_url, job) > 0
    assert _sqlite_rows(home / "jobs.sqlite", job) == 0

    entries = _ledger_entries(postgres_url, job)
    assert entries[:len(before)] == before and entries[-1]["kind"] == "sign"
    assert _ledger_entries(str(home / "ledger.sqlite"), job) == []
    verified = kantoku("rights", "verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    exported = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert exported == entries[:len(exported)]
