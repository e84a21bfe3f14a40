"""`kantoku mv` the way a user runs it: a real standalone server with all four services, the CLI
as a subprocess, SQLite checkpoints, real ffmpeg and real C2PA signatures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import pytest
import yaml

from tests.integration.test_standalone_cli import _wait_healthy
from tests.scripted_llm import Text, scripted_llm

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))
ROOT = Path(__file__).resolve().parents[2]


def brief(tmp_path: Path, name: str = "brief.yaml", **changes: object) -> Path:
    document = {
        "title": "Rooftop run", "logline": "Aki chases the last train across the rooftops",
        "duration_s": 5, "seed": 1, "locations": ["rooftop"],
        "characters": [{"name": "Aki", "description": "red jacket"}],
        "dialogue": [{"speaker": "Aki", "text": "Wait for me!"}],
        **changes,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


@contextmanager
def standalone_services(*names: str) -> Iterator[str]:
    """`kantoku serve NAMES --standalone` on a free port; yields its address, stops it after."""
    from kantoku.services._core.server import free_port

    port = free_port()
    process = subprocess.Popen([KANTOKU, "serve", *names, "--standalone", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        _wait_healthy(address, process)
        yield address
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with standalone_services("tts", "motion", "image", "video") as address:
        yield address


def kantoku(*args: str, env: dict[str, str] | None = None, timeout: float = 240
            ) -> subprocess.CompletedProcess:
    return subprocess.run([KANTOKU, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def ledger(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]


def job_id(out: Path) -> str:
    return json.loads((out / "job.json").read_text())["job_id"]


def render_entries(out: Path) -> list[dict]:
    return [e for e in ledger(out) if e["kind"] in ("image", "video", "tts", "motion")]


def test_mv_writes_a_signed_video_with_its_plan_timeline_and_rights(server: str,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kantoku("mv", str(brief(tmp_path)), "--out", str(out), "--yes", "--server", server)
    assert done.returncode == 0, done.stderr
    for name in ("video.mp4", "plan.json", "timeline.otio", "storyboard.png", "rights.json",
                 "rights.html", "ledger.jsonl", "job.json"):
        assert (out / name).is_file(), name
    with av.open(str(out / "video.mp4")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (720, 1280)
        assert sum(1 for _ in container.decode(video=0)) == 150  # 5 s at 30 fps
        assert audio.codec_context.name == "aac"
    plan = json.loads((out / "plan.json").read_text())
    assert plan["shots"][0]["start_s"] == 0 and plan["shots"][-1]["end_s"] == 5
    kinds = {e["kind"] for e in ledger(out)}
    assert {"plan", "policy", "image", "video", "tts", "motion", "assemble", "sign"} <= kinds
    rights = json.loads((out / "rights.json").read_text())
    assert rights["verdict"]["publish"] and rights["verdict"]["monetize"]
    assert "previz-v1" in (out / "rights.html").read_text()
    assert json.loads((out / "job.json").read_text())["status"] == "done"
    verified = kantoku("rights", "verify", str(out))
    assert verified.returncode == 0, verified.stderr

    # Tampering with a shot clip or with the ledger is found and named.
    clip = out / "shots" / "s001.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    clip.write_bytes(bytes(data))
    failed = kantoku("rights", "verify", str(out))
    assert failed.returncode == 4 and "s001.mp4" in failed.stderr
    lines = (out / "ledger.jsonl").read_text().splitlines()
    entry = json.loads(lines[2])
    entry["kind"] = "edited"
    lines[2] = json.dumps(entry)
    (out / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    failed = kantoku("rights", "verify", str(out / "ledger.jsonl"))
    assert failed.returncode == 4 and "seq 3" in failed.stderr


def test_a_repeated_job_renders_nothing_and_one_changed_line_renders_one_shot(
        server: str, tmp_path: Path) -> None:
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    dialogue = [{"speaker": "Aki", "text": "Over here."}, {"speaker": "Aki", "text": "Jump!"}]
    args = ("--yes", "--server", server)
    path = brief(tmp_path, seed=2, duration_s=8, dialogue=dialogue)
    assert kantoku("mv", str(path), "--out", str(first), *args).returncode == 0
    assert not any(e["cache_hit"] for e in render_entries(first))
    assert kantoku("mv", str(path), "--out", str(second), *args).returncode == 0
    assert all(e["cache_hit"] for e in render_entries(second))
    changed = brief(tmp_path, "changed.yaml", seed=2, duration_s=8,
                    dialogue=[dialogue[0], {"speaker": "Aki", "text": "Jump now!"}])
    assert kantoku("mv", str(changed), "--out", str(third), *args).returncode == 0
    rendered = {(e["kind"], e["shot_id"]) for e in render_entries(third) if not e["cache_hit"]}
    assert {kind for kind, _ in rendered} == {"tts", "motion"}
    assert len({shot for _, shot in rendered}) == 1


@pytest.mark.slow  # a job killed and run again, about 20 s: `make test-slow`
def test_a_killed_job_resumes_without_rendering_finished_steps_again(server: str,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = brief(tmp_path, seed=3, duration_s=30)
    process = subprocess.Popen([KANTOKU, "mv", str(path), "--out", str(out), "--yes",
                                "--server", server], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    ledger_db = Path(os.environ["KANTOKU_HOME"]) / "ledger.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "job.json").exists() and _rendered_steps(ledger_db, job_id(out)) >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "video.mp4").exists()
    assert json.loads((out / "job.json").read_text())["status"] == "running"
    resumed = kantoku("resume", job_id(out), "--server", server)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "video.mp4").is_file()
    fresh = [e for e in render_entries(out) if not e["cache_hit"]]
    keys = [e["data"]["idempotency_key"] for e in fresh]
    assert len(keys) == len(set(keys))  # every step rendered once across both runs
    assert kantoku("rights", "verify", str(out)).returncode == 0


def _rendered_steps(path: Path, job: str) -> int:
    from kantoku.planner.rights.ledger import SqliteLedger

    if not path.exists():
        return 0
    return sum(e["kind"] in ("image", "video") for e in SqliteLedger(path).entries(job))


def test_without_a_terminal_the_job_waits_for_review_then_resumes(server: str,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "out"
    paused = kantoku("mv", str(brief(tmp_path, seed=4)), "--out", str(out), "--server", server)
    assert paused.returncode == 3 and "waits for its plan review" in paused.stdout
    assert json.loads((out / "job.json").read_text())["status"] == "awaiting_review"
    assert not (out / "video.mp4").exists()
    refused = kantoku("resume", job_id(out), "--server", server)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    approved = kantoku("resume", job_id(out), "--yes", "--server", server)
    assert approved.returncode == 0, approved.stderr
    assert (out / "video.mp4").is_file()


def test_a_service_that_is_down_fails_clearly_and_the_job_resumes(server: str,
                                                                 tmp_path: Path) -> None:
    from kantoku.services._core.server import free_port

    out = tmp_path / "out"
    down = kantoku("mv", str(brief(tmp_path, seed=5)), "--out", str(out), "--yes",
                   "--server", f"127.0.0.1:{free_port()}")
    assert down.returncode == 7, down.stderr
    assert f"kantoku resume {job_id(out)}" in down.stderr
    assert json.loads((out / "job.json").read_text())["status"] == "failed"
    resumed = kantoku("resume", job_id(out), "--server", server)
    assert resumed.returncode == 0, resumed.stderr


def test_a_policy_violation_stops_the_job_before_any_render(server: str, tmp_path: Path) -> None:
    picture = tmp_path / "aki.png"
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save(picture)
    out = tmp_path / "out"
    characters = [{"name": "Aki", "reference": {"path": str(picture), "holder": "A. Photographer",
                                                "consent": False}}]
    refused = kantoku("mv", str(brief(tmp_path, seed=6, characters=characters)), "--out",
                      str(out), "--yes", "--server", server)
    assert refused.returncode == 4
    assert "aki.png" in refused.stderr and "consent" in refused.stderr
    ledger_db = Path(os.environ["KANTOKU_HOME"]) / "ledger.sqlite"
    assert _rendered_steps(ledger_db, job_id(out)) == 0


def test_an_llm_that_answers_garbage_falls_back_to_the_heuristic_plan(server: str,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "out"
    with scripted_llm(Text("shots? lol {not json")) as llm:
        done = kantoku("mv", str(brief(tmp_path, seed=7)), "--out", str(out), "--yes",
                       "--planner", "llm", "--server", server, env=llm.env())
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert plan["planner"].startswith("heuristic (fallback")
    entries = ledger(out)
    kinds = [e["kind"] for e in entries]
    assert kinds.count("llm_call") == 2 and kinds.count("plan_gate") == 2 and "fallback" in kinds
    planning = next(e for e in entries if e["kind"] == "plan")["data"]["planning"]
    assert planning["model"] == "scripted-1" and planning["fallback_reason"]
    said = " ".join(done.stdout.split())
    assert "the LLM scripted-1" in said and "was not used" in said


def test_the_llm_planner_runs_on_the_embedded_model_without_configuration(
        server: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "KANTOKU_LLM_"))}
    done = subprocess.run(
        [KANTOKU, "mv", str(ROOT / "examples" / "city-night.yaml"), "--out", str(out), "--yes",
         "--planner", "llm", "--server", server, "--resolution", "480p"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "plan: LLM planner smollm2-135m-instruct" in said or \
        "the LLM smollm2-135m-instruct" in said
    entries = ledger(out)
    calls = [e["data"] for e in entries if e["kind"] == "llm_call"]
    assert calls and all(c["model"] == "smollm2-135m-instruct" for c in calls)
    assert all(c["latency_ms"] <= c["timeout_s"] * 1000 for c in calls)
    gates = [e["data"] for e in entries if e["kind"] == "plan_gate"]
    assert gates and gates[-1]["passed"]
    plan = json.loads((out / "plan.json").read_text())
    if plan["planner"] == "llm":
        assert all(shot["sources"] for shot in plan["shots"])
    names = {n for shot in plan["shots"] for n in shot["characters"]}
    assert names == {"Aki", "Ren"}
    assert [d["text"] for s in plan["shots"] for d in s["dialogue"]] == [
        "Come on, the last train leaves at midnight!", "I can see the station from here."]
