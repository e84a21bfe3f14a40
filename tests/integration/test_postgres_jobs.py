"""The Postgres checkpointer against a real PostgreSQL server: a job pauses at review and resumes
from checkpoints that live in Postgres, not in the default jobs.sqlite.

The server is the session's `postgres_url` (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

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


def test_a_job_pauses_and_resumes_from_checkpoints_in_postgres(server: str,
                                                              postgres_url: str,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump({
        "title": "Platform", "logline": "Aki waits for the first train", "duration_s": 3,
        "seed": 11, "locations": ["station"],
        "characters": [{"name": "Aki", "description": "red jacket"}]}))
    out = tmp_path / "out"
    env = {"KANTOKU_CHECKPOINT_URL": postgres_url}

    paused = kantoku("mv", str(path), "--out", str(out), "--server", server, env=env)
    assert paused.returncode == 3, paused.stderr
    assert json.loads((out / "job.json").read_text())["status"] == "awaiting_review"
    assert not (out / "video.mp4").exists()
    job = job_id(out)
    assert _checkpoint_rows(postgres_url, job) > 0

    approved = kantoku("resume", job, "--yes", "--server", server, env=env)
    assert approved.returncode == 0, approved.stderr
    assert (out / "video.mp4").is_file()
    assert json.loads((out / "job.json").read_text())["status"] == "done"
    assert _checkpoint_rows(postgres_url, job) > 0
    assert _sqlite_rows(Path(os.environ["KANTOKU_HOME"]) / "jobs.sqlite", job) == 0
