"""Nothing lost: a folder holds one job, a job runs in one process, any kill point resumes, and a
corrupt blob in the asset store is quarantined and rendered again. Through the CLI, as a user
meets them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.test_jobs import (  # noqa: F401 - server is a fixture
    KANTOKU,
    brief,
    job_id,
    kantoku,
    ledger,
    render_entries,
    server,
)

pytestmark = pytest.mark.integration
HOME = Path(os.environ["KANTOKU_HOME"])


def paused_job(tmp_path: Path, seed: int, server: str, **changes: object) -> Path:  # noqa: F811
    """A job stopped at its review (no terminal, no --yes): planned, nothing rendered yet."""
    out = tmp_path / "out"
    paused = kantoku("mv", str(brief(tmp_path, seed=seed, **changes)), "--out", str(out),
                     "--server", server)
    assert paused.returncode == 3, paused.stderr
    return out


@contextmanager
def lock_held_elsewhere(job: str, folder: Path) -> Iterator[subprocess.Popen]:
    """Another process that holds the locks of job `job` and of `folder` until it is killed."""
    code = ("import sys, time\nfrom kantoku.planner.claims import hold_folder, hold_job\n"
            f"with hold_job({job!r}), hold_folder({str(folder)!r}, {job!r}):\n"
            "    print('held', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_that_holds_another_job_or_other_files_is_refused(server: str,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    out = paused_job(tmp_path, 21, server)
    first = job_id(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    second = kantoku("mv", str(brief(tmp_path, "other.yaml", seed=22)), "--out", str(out),
                     "--yes", "--server", server)

    assert second.returncode == 2
    assert f"{out} holds job {first}" in second.stderr
    assert "another --out" in second.stderr and f"kantoku resume {first}" in second.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert job_id(out) == first
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "video.mp4").write_bytes(b"an old video")
    refused = kantoku("mv", str(brief(tmp_path, seed=22)), "--out", str(stale), "--yes",
                      "--server", server)
    assert refused.returncode == 2
    assert f"{stale} is not empty and holds no kantoku job" in refused.stderr
    assert sorted(p.name for p in stale.iterdir()) == ["video.mp4"]


@pytest.mark.slow  # a job killed and run again, about 20 s: `make test-slow`
def test_a_job_runs_in_one_process_and_a_killed_holder_leaves_no_lock(server: str,  # noqa: F811
                                                                      tmp_path: Path) -> None:
    out = paused_job(tmp_path, 23, server)
    job = job_id(out)
    job_file = (out / "job.json").read_text()
    with lock_held_elsewhere(job, out) as holder:
        second = kantoku("resume", job, "--yes", "--server", server)
        assert second.returncode == 7
        assert f"job {job} is already running in process {holder.pid}; wait for it or stop " \
               "it" in second.stderr
        other = kantoku("mv", str(brief(tmp_path, "other.yaml", seed=27)), "--out", str(out),
                        "--yes", "--server", server)
        assert other.returncode == 7
        assert f"{out} is in use by job {job} in process {holder.pid}" in other.stderr
        assert (out / "job.json").read_text() == job_file
        assert not any(e["kind"] == "image" for e in ledger_entries(job))
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        resumed = kantoku("resume", job, "--yes", "--server", server)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "job.json").read_text())["status"] == "done"


def test_a_job_whose_folder_went_to_another_job_is_not_resumed_into_it(
        server: str, tmp_path: Path) -> None:  # noqa: F811
    out = paused_job(tmp_path, 28, server)
    first = job_id(out)
    shutil.rmtree(out)
    taken = kantoku("mv", str(brief(tmp_path, "other.yaml", seed=29)), "--out", str(out),
                    "--server", server)
    assert taken.returncode == 3, taken.stderr
    second = job_id(out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))

    resumed = kantoku("resume", first, "--yes", "--server", server)

    assert resumed.returncode == 2
    assert f"{out} holds job {second}; {first} was replaced there and cannot be resumed" \
        in resumed.stderr
    assert job_id(out) == second
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def ledger_entries(job: str) -> list[dict]:
    from kantoku.planner.rights.ledger import SqliteLedger

    path = HOME / "ledger.sqlite"
    return SqliteLedger(path).entries(job) if path.exists() else []


def test_the_leftovers_of_a_kill_are_cleared_and_the_job_resumes(server: str,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    out = paused_job(tmp_path, 24, server)
    work = out / ".work"
    work.mkdir()
    planted = [work / ".assembled.mp4.0a1b2c3d.partial", work / ".assembled.m4a.0a1b2c3d.partial",
               work / "storyboard.png", out / ".timeline.otio.0a1b2c3d.partial",
               out / ".song.wav.partial", out / "shots" / ".s01.0a1b2c3d.signing.mp4"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")

    resumed = kantoku("resume", job_id(out), "--yes", "--server", server)

    assert resumed.returncode == 0, resumed.stderr
    assert not work.exists() and not any(p.exists() for p in planted)
    assert not [p for p in out.rglob(".*")]
    assert kantoku("rights", "verify", str(out)).returncode == 0


@pytest.mark.slow  # two whole jobs
def test_a_kill_during_assembly_resumes_to_a_verified_video(server: str,  # noqa: F811
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = subprocess.Popen([KANTOKU, "mv", str(brief(tmp_path, seed=25, duration_s=30)),
                                "--out", str(out), "--yes", "--server", server],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and process.poll() is None \
            and not list((out / ".work").glob(".assembled.mp4.*.partial")):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list((out / ".work").glob(".assembled.mp4.*.partial")), "not killed in assembly"

    resumed = kantoku("resume", job_id(out), "--yes", "--server", server)

    assert resumed.returncode == 0, resumed.stderr
    assert (out / "video.mp4").is_file() and not (out / ".work").exists()
    assert kantoku("rights", "verify", str(out)).returncode == 0


@pytest.mark.slow  # two jobs each, about 15 s: `make test-slow`
@pytest.mark.parametrize(("kind", "seed"), [("image", 26), ("video", 30)])
def test_a_corrupt_blob_is_quarantined_and_rendered_again(server: str,  # noqa: F811
                                                          tmp_path: Path, kind: str,
                                                          seed: int) -> None:
    path = brief(tmp_path, seed=seed, duration_s=8)
    first = tmp_path / "first"
    assert kantoku("mv", str(path), "--out", str(first), "--yes", "--server", server
                   ).returncode == 0
    clip = next(e for e in render_entries(first) if e["kind"] == kind)
    digest = clip["record"]["output"]["sha256"]
    blob = next((HOME / "assets" / digest[:2]).glob(digest + "*"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    second = tmp_path / "second"
    again = kantoku("mv", str(path), "--out", str(second), "--yes", "--server", server)

    assert again.returncode == 0, again.stderr
    fresh = [e for e in render_entries(second) if not e["cache_hit"]]
    assert [(e["kind"], e["shot_id"]) for e in fresh] == [(kind, clip["shot_id"])]
    assert fresh[0]["data"]["quarantined"] == [
        f"asset://sha256/{digest} was corrupt in the asset store: quarantined, rendered again"]
    assert [p.read_bytes() for p in (HOME / "assets" / "quarantine").glob(blob.name + ".*")
            ] == [bytes(data)]
    assert kantoku("rights", "verify", str(second)).returncode == 0
