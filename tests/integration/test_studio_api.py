"""`kantoku studio`'s HTTP API on a real uvicorn server, with the services on a standalone gRPC
server: a job stops at review, its plan is edited and approved, its events stream as SSE and
its video downloads with a Range request."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))

BRIEF = {"title": "Night market", "logline": "Mei walks through a night market at dusk",
         "duration_s": 4, "seed": 5, "resolution": "480p", "aspect": "16:9",
         "locations": ["night market"],
         "characters": [{"name": "Mei", "description": "yellow raincoat"}]}


@contextmanager
def running_studio(services: str) -> Iterator[str]:
    """A studio on a free port in a thread of this process, stopped at the end of the block."""
    import uvicorn

    from kantoku.agents.studio.app import create_app
    from kantoku.services._core.server import free_port

    port = free_port()
    config = uvicorn.Config(create_app(server=services), host="127.0.0.1", port=port,
                            log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "the studio did not stop"


def wait_for(api: httpx.Client, job_id: str, status: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] == status:
            return job
        assert job["status"] not in ("failed", "cancelled", "done") or job["status"] == status, job
        assert time.monotonic() < deadline, f"{job_id} is still {job['status']}"
        time.sleep(0.2)


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Each event of a streamed SSE response, as {"id", "event", "data"} (data decoded)."""
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in current:
                yield current
            current = {}
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "id":
            current["id"] = int(value)
        elif key == "event":
            current["event"] = value
        elif key == "data":
            current["data"] = json.loads(value)


def sse(api: httpx.Client, job_id: str, last_id: int | None = None, until: str | None = None
        ) -> list[dict[str, Any]]:
    """The events of a stream, to its end or to the first event named `until`."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    events: list[dict[str, Any]] = []
    with api.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            events.append(event)
            if event.get("event") == until:
                break
    return events


def raw_get(api: httpx.Client, path: str) -> int:
    """The status of GET `path` sent as it is written (clients drop dot segments)."""
    connection = http.client.HTTPConnection(api.base_url.host, api.base_url.port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def new_job(api: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = api.post("/v1/jobs", json={"brief": {**BRIEF, **changes}, "planner": "heuristic"})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_job_is_reviewed_edited_approved_and_downloaded(api: httpx.Client, home: Path) -> None:
    created = new_job(api)
    job_id = created["id"]
    assert created["status"] in ("created", "running")
    job = wait_for(api, job_id, "awaiting_review")
    assert job["plan"]["shots"] and job["plan_version"] == 1 and job["policy"]
    assert job["plan"]["width_px"] == 854 or job["plan"]["height_px"] == 480
    assert json.loads((home / "studio" / "jobs" / job_id / "job.json").read_text())["status"] \
        == "awaiting_review"
    assert any(j["id"] == job_id for j in api.get("/v1/jobs").json())

    # Events replay from the start; after Last-Event-ID, only what came later.
    replay = sse(api, job_id, until="plan_ready")
    assert [e["id"] for e in replay] == list(range(1, len(replay) + 1))
    ready = replay[-1]
    assert ready["data"]["plan"]["shots"] == job["plan"]["shots"]
    later = sse(api, job_id, last_id=ready["id"], until="status")
    assert later[0]["id"] == ready["id"] + 1 and all(e["id"] > ready["id"] for e in later)

    plan = api.get(f"/v1/jobs/{job_id}/plan").json()
    assert plan["version"] == 1
    shots = plan["plan"]["shots"]
    first = shots[0]["id"]
    edited = api.patch(f"/v1/jobs/{job_id}/shots/{first}",
                       json={"image_prompt": "lanterns swaying above the stalls"})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["version"] == 2
    assert body["diff"]["stale"] == [first]
    assert body["diff"]["changes"][0]["fields"] == ["image_prompt"]
    assert body["diff"]["render_steps"] == 2  # a new keyframe and a new clip

    # Refusals name the shot, the field and the rule; the plan stays as it was.
    unknown = api.patch(f"/v1/jobs/{job_id}/shots/{first}", json={"characters": ["Nobody"]})
    assert unknown.status_code == 422
    assert {"shot": first, "field": "characters"}.items() <= unknown.json()["problems"][0].items()
    assert "Nobody" in unknown.json()["detail"]
    last = shots[-1]
    backwards = api.patch(f"/v1/jobs/{job_id}/shots/{last['id']}",
                          json={"end_s": last["start_s"] - 0.1})
    assert backwards.status_code == 422
    problem = backwards.json()["problems"][0]
    assert (problem["shot"], problem["field"]) == (last["id"], "end_s"), problem
    assert f"{last['id']}.end_s" in backwards.json()["detail"]
    wrong_type = api.patch(f"/v1/jobs/{job_id}/shots/{first}", json={"camera_move": "spin"})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["problems"][0]["field"] == "camera_move"
    assert api.patch(f"/v1/jobs/{job_id}/shots/s999", json={}).status_code == 404
    assert api.get(f"/v1/jobs/{job_id}/plan").json()["version"] == 2

    # Two subscribers from before the approval each see every event to the end.
    streams: list[list[dict[str, Any]]] = [[], []]
    readers = [threading.Thread(target=lambda i=i: streams[i].extend(
        sse(api, job_id, last_id=ready["id"]))) for i in range(2)]
    for reader in readers:
        reader.start()
    approved = api.post(f"/v1/jobs/{job_id}:approve")
    assert approved.status_code == 202, approved.text
    done = wait_for(api, job_id, "done", timeout=120)
    for reader in readers:
        reader.join(30)
        assert not reader.is_alive(), "the event stream did not end with the job"
    assert streams[0] == streams[1]
    names = [e["event"] for e in streams[0]]
    assert "shot_done" in names and names[-1] == "status"
    assert streams[0][-1]["data"]["status"] == "done"
    ids = [e["id"] for e in streams[0]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    assert done["plan"]["shots"][0]["image_prompt"] == "lanterns swaying above the stalls"
    outputs = {o["name"] for o in done["outputs"]}
    assert {"video.mp4", "plan.json", "rights.json", "record.json"} <= outputs
    assert done["verdict"]["publish"]
    saved = json.loads((home / "studio" / "jobs" / job_id / "plan.json").read_text())
    assert saved["shots"][0]["image_prompt"] == "lanterns swaying above the stalls"
    ledger = [json.loads(line) for line in
              (home / "studio" / "jobs" / job_id / "ledger.jsonl").read_text().splitlines()]
    edit = next(e for e in ledger if e["kind"] == "plan_edit")
    assert edit["data"]["changes"] == [{"shot_id": first, "status": "changed",
                                        "fields": ["image_prompt"]}]
    verified = subprocess.run([KANTOKU, "rights", "verify", str(home / "studio" / "jobs" / job_id)],
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    whole = api.get(f"/v1/jobs/{job_id}/files/video.mp4")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    part = api.get(f"/v1/jobs/{job_id}/files/video.mp4", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert part.content == whole.content[100:200]

    # Only the folder's own files: no traversal, no links out, no plan edits after approval.
    folder = home / "studio" / "jobs" / job_id
    (folder / "escape.txt").symlink_to(home / "jobs.sqlite")
    for name in ("..", "%2E%2E", "..%2Fjobs.sqlite", "%2E%2E%2Fjobs.sqlite", "escape.txt",
                 "shots", "nothing.mp4", ".%2Fjob.json"):
        assert raw_get(api, f"/v1/jobs/{job_id}/files/{name}") == 404, name
    assert api.put(f"/v1/jobs/{job_id}/plan", json=done["plan"]).status_code == 409
    assert api.post(f"/v1/jobs/{job_id}:approve").status_code == 409


def test_edits_pass_the_rights_policy_and_a_cancelled_job_cannot_be_approved(
        api: httpx.Client) -> None:
    job_id = new_job(api, seed=6, rights_policy={"opt_in_training_data_only": True})["id"]
    wait_for(api, job_id, "awaiting_review")
    # A line an edit adds may name a voice; the policy gate's rules still hold.
    for voice, words in (("jf_alpha", "opt_in_training_data_only"), ("nope", "unknown")):
        line = {"speaker": "Mei", "text": "Over here", "voice": voice}
        refused = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"dialogue": [line]})
        assert refused.status_code == 422, refused.text
        problem = refused.json()["problems"][0]
        assert (problem["shot"], problem["field"]) == ("s001", "dialogue[0].voice"), problem
        assert words in problem["rule"]
    voiced = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"dialogue": [
        {"speaker": "Mei", "text": "Over here", "voice": "en_US-joe-medium"}]})
    assert voiced.status_code == 200, voiced.text
    assert voiced.json()["diff"]["changes"][0]["renders"] == ["speech"]
    policy = api.get(f"/v1/jobs/{job_id}").json()["policy"]
    assert "en_US-joe-medium" in {item["id"] for item in policy["items"]}
    plan = api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]
    plan["shots"][0]["description"] = "the market from above"
    replaced = api.put(f"/v1/jobs/{job_id}/plan", json=plan)
    assert replaced.status_code == 200 and replaced.json()["version"] == 3
    cancelled = api.post(f"/v1/jobs/{job_id}:cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api.post(f"/v1/jobs/{job_id}:approve").status_code == 409
    events = sse(api, job_id)  # the stream of a finished job ends after its replay
    assert events[-1]["data"] == {"event": "status", "status": "cancelled"}


def test_a_song_and_lyrics_upload_as_a_form(api: httpx.Client, tmp_path: Path) -> None:
    from tests.conftest import make_song

    song = make_song(tmp_path / "song.wav", 6)
    brief = {k: v for k, v in BRIEF.items() if k != "duration_s"} | {
        "song": {"title": "Market", "holder": "kantoku project", "license": "CC0-1.0",
                 "commercial_use": True}}
    lyrics = "[00:01.00]lanterns in the rain\n[00:03.50]the night is ours\n"
    created = api.post("/v1/jobs", data={"planner": "heuristic"}, files={
        "brief": ("brief.yaml", yaml.safe_dump(brief).encode()),
        "song": ("song.wav", song.read_bytes(), "audio/wav"),
        "lyrics": ("song.lrc", lyrics.encode())})
    assert created.status_code == 201, created.text
    job = wait_for(api, created.json()["id"], "awaiting_review")
    plan = job["plan"]
    assert abs(plan["duration_s"] - 6) < 0.05
    sung = [line for shot in plan["shots"] for line in shot["lyrics"]]
    assert "lanterns in the rain" in sung and "the night is ours" in sung
    assert api.post(f"/v1/jobs/{job['id']}:cancel").json()["status"] == "cancelled"


def test_a_studio_started_again_finds_its_jobs_and_finishes_a_stopped_one(
        api: httpx.Client, services: str, home: Path) -> None:
    job_id = new_job(api, seed=7, duration_s=10)["id"]  # long enough to stop mid-render
    wait_for(api, job_id, "awaiting_review")
    edited = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"description": "rain on awnings"})
    assert edited.json()["version"] == 2
    with running_studio(services) as url, httpx.Client(base_url=url, timeout=30) as second:
        job = second.get(f"/v1/jobs/{job_id}").json()
        assert (job["status"], job["plan_version"]) == ("awaiting_review", 2)
        assert job["plan"]["shots"][0]["description"] == "rain on awnings"
        assert second.post(f"/v1/jobs/{job_id}:approve").status_code == 202
        sse(second, job_id, until="step")  # rendering has begun
    # Stopped while it rendered: checkpointed, and the next studio runs it on by itself.
    folder = home / "studio" / "jobs" / job_id
    assert json.loads((folder / "job.json").read_text())["status"] == "interrupted"
    with running_studio(services) as url, httpx.Client(base_url=url, timeout=30) as third:
        assert third.get(f"/v1/jobs/{job_id}").json()["status"] in ("running", "done")
        assert third.post(f"/v1/jobs/{job_id}:approve").status_code == 409
        done = wait_for(third, job_id, "done", timeout=120)
        assert done["plan"]["shots"][0]["description"] == "rain on awnings"
        assert "video.mp4" in {o["name"] for o in done["outputs"]}
        assert {"assemble", "sign", "report"} <= set(done["timings_s"])
        assert third.post(f"/v1/jobs/{job_id}:resume").status_code == 409
    # Nothing rendered twice: every shot's picture and clip was made once, before or after.
    ledger = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    made = [(e["shot_id"], e["kind"]) for e in ledger
            if e["kind"] in ("image", "video") and not e["cache_hit"]]
    assert len(made) == len(set(made)) == 2 * len(done["plan"]["shots"]), made


def test_bad_requests_name_what_is_wrong(api: httpx.Client) -> None:
    missing = api.get("/v1/jobs/job-nope")
    assert missing.status_code == 404 and "job-nope" in missing.json()["detail"]
    assert api.get("/v1/jobs/job-nope/events").status_code == 404
    assert api.get("/v1/jobs/job-nope/files/video.mp4").status_code == 404

    bad = api.post("/v1/jobs", json={"brief": {**BRIEF, "duration_s": "soon"}})
    assert bad.status_code == 400 and "duration_s" in bad.json()["detail"]
    extra = api.post("/v1/jobs", json={"brief": {**BRIEF, "colour": "red"}})
    assert extra.status_code == 400 and "colour" in extra.json()["detail"]
    planner = api.post("/v1/jobs", json={"brief": BRIEF, "planner": "magic"})
    assert planner.status_code == 400 and "planner" in planner.json()["detail"]
    form = api.post("/v1/jobs", files={"brief": ("brief.yaml", b"title: [unclosed\n")})
    assert form.status_code == 400 and form.json()["detail"].startswith("brief:")
    no_title = api.post("/v1/jobs", files={"brief": ("brief.yaml", b"logline: x\nduration_s: 4\n")})
    assert no_title.status_code == 400 and "title" in no_title.json()["detail"]
    not_audio = api.post("/v1/jobs", files={
        "brief": ("brief.json", json.dumps(BRIEF).encode()),
        "song": ("song.wav", b"this is not a song, only words " * 64)})
    assert not_audio.status_code == 400, not_audio.text
    assert not_audio.json()["detail"].startswith("song:") and not_audio.json()["field"] == "song"
    assert str(Path(os.environ["KANTOKU_HOME"])) not in not_audio.json()["detail"]
    uploads = Path(os.environ["KANTOKU_HOME"]) / "studio" / "uploads"
    assert not any(p.name == "song.wav" and p.stat().st_size == 2048 for p in uploads.rglob("*"))
    assert api.post("/v1/jobs", content=b"brief", headers={"content-type": "text/plain"}
                    ).status_code == 415
    from kantoku.agents.studio.uploads import MAX_LYRICS_BYTES

    long_lyrics = api.post("/v1/jobs", files={
        "brief": ("brief.json", json.dumps(BRIEF).encode()),
        "song": ("song.wav", b"RIFF" * 16), "lyrics": ("song.lrc", b"la " * MAX_LYRICS_BYTES)})
    assert long_lyrics.status_code == 413 and long_lyrics.json()["field"] == "lyrics"


def test_a_token_guards_every_route_but_healthz(api: httpx.Client,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_AUTH_TOKEN", "s3cret-token")
    assert api.get("/healthz").status_code == 200
    for path in ("/v1/jobs", "/openapi.json", "/v1/jobs/job-nope/events"):
        refused = api.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
    assert api.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.get("/v1/jobs", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert api.get("/v1/jobs?token=s3cret-token").status_code == 200
    schema = api.get("/openapi.json", headers={"Authorization": "Bearer s3cret-token"}).json()
    assert "/v1/jobs/{job_id}:approve" in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]


def test_kantoku_studio_serves_and_refuses_a_wide_host_without_a_token(services: str) -> None:
    from kantoku.services._core.server import free_port

    env = {k: v for k, v in os.environ.items() if k != "KANTOKU_AUTH_TOKEN"}
    done = subprocess.run([KANTOKU, "studio", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "KANTOKU_AUTH_TOKEN" in done.stderr
    port = free_port()
    process = subprocess.Popen([KANTOKU, "studio", "--port", str(port), "--server", services],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "kantoku studio did not answer"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C: uvicorn shuts down, then says so
        assert process.wait(20) in (0, 130)
