"""The studio's plan review on a real uvicorn server with standalone gRPC services: the song's
timeline, storyboard previews as the plan lands and after edits, cuts moved onto beats, and a
finished job's shot regenerated as its next version."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from PIL import Image

from tests.integration.test_studio_api import (
    BRIEF,
    KANTOKU,
    new_job,
    running_studio,
    sse,
    sse_events,
    wait_for,
)

pytestmark = pytest.mark.integration
SONG_BRIEF = {k: v for k, v in BRIEF.items() if k != "duration_s"} | {
    "song": {"title": "Market", "holder": "kantoku project", "license": "CC0-1.0",
             "commercial_use": True}}
LYRICS = "[00:02.00]lanterns in the rain\n[00:09.00]the night is ours\n[00:20.00]walk on\n"


def song_job(api: httpx.Client, song: Path) -> httpx.Response:
    # A studio's first song may wait for librosa's import (seconds, more on a busy machine).
    return api.post("/v1/jobs", data={"planner": "heuristic"}, timeout=120, files={
        "brief": ("brief.yaml", yaml.safe_dump(SONG_BRIEF).encode()),
        "song": ("song.wav", song.read_bytes(), "audio/wav"),
        "lyrics": ("song.lrc", LYRICS.encode())})


def first_preview(api: httpx.Client, song: Path) -> tuple[str, float, dict[str, Any]]:
    """A new song job's id, the seconds from its POST to its first `preview` event, and that
    event (read from the event stream as the page reads it)."""
    started = time.perf_counter()
    created = song_job(api, song)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    event = sse(api, job_id, until="preview")[-1]
    assert event["event"] == "preview", event
    return job_id, time.perf_counter() - started, event["data"]


def read_events(api: httpx.Client, job_id: str, enough: Callable[[list[dict]], bool],
                last_id: int = 0, timeout: float = 60) -> list[dict[str, Any]]:
    """A job's events after `last_id`, read from its stream until `enough` says so."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with api.stream("GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(last_id)},
                    timeout=timeout) as response:
        assert response.status_code == 200
        for event in sse_events(response):
            assert time.monotonic() < deadline, f"only these came: {events}"
            events.append(event)
            if enough(events):
                break
    return events


def test_a_song_job_shows_its_timeline_previews_and_moves_cuts_onto_beats(
        api: httpx.Client, home: Path, tmp_path: Path) -> None:
    from tests.conftest import make_song

    song = make_song(tmp_path / "song.wav", 30)
    warm_id, cold_s, _ = first_preview(api, song)  # the first job pays for the imports
    api.post(f"/v1/jobs/{warm_id}:cancel")
    job_id, warm_s, event = first_preview(api, song)
    print(f"\ntime to first preview, 30 s song: {cold_s:.2f} s cold, {warm_s:.2f} s warm")
    assert (event["shot_id"], event["plan_version"]) == ("s001", 1)
    first = api.get(event["url"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    job = wait_for(api, job_id, "awaiting_review")
    shots = job["plan"]["shots"]
    assert Image.open(io.BytesIO(first.content)).size == \
        (job["plan"]["width_px"], job["plan"]["height_px"])

    # Every shot gets its preview, first shot first.
    previews = [e["data"]["shot_id"] for e in read_events(
        api, job_id, lambda seen: sum(e["event"] == "preview" for e in seen) >= len(shots))
        if e["event"] == "preview"]
    assert previews == [s["id"] for s in shots]
    folder = home / "studio" / "previews" / job_id
    assert len(list(folder.glob("*.png"))) == len(shots)
    assert not list((home / "studio" / "jobs" / job_id).glob("*.png"))  # the signed folder

    # The timeline strip: the song's beats, sections, lyrics and a waveform of peaks.
    timeline = api.get(f"/v1/jobs/{job_id}/timeline")
    assert timeline.status_code == 200, timeline.text
    strip = timeline.json()
    assert abs(strip["duration_s"] - 30) < 0.05 and strip["fps"] == job["plan"]["fps"]
    beats = strip["beats_s"]
    assert len(beats) > 30 and beats == sorted(beats)
    assert set(strip["downbeats_s"]) <= set(beats)
    sections = strip["sections"]
    assert sections[0]["start_s"] == 0 and abs(sections[-1]["end_s"] - 30) < 0.05
    assert [line["text"] for line in strip["lyrics"]] == \
        ["lanterns in the rain", "the night is ours", "walk on"]
    assert strip["lyrics"][0]["start_s"] == 2.0
    peaks = strip["waveform"]["peaks"]
    assert strip["waveform"]["seconds_per_peak"] == pytest.approx(0.05, abs=0.001)
    assert len(peaks) == 600 and max(peaks) == 1.0 and min(peaks) >= 0
    song_sha256 = hashlib.sha256(song.read_bytes()).hexdigest()
    assert (home / "studio" / "waveforms" / f"{song_sha256}.json").is_file()  # computed once
    assert api.get(f"/v1/jobs/{job_id}/timeline").json() == strip  # from the cache

    # A cut dragged near a beat lands on it; the next shot follows.
    fps = job["plan"]["fps"]
    s1, s2 = shots[0], shots[1]
    target = next(b for b in beats if s1["start_s"] + 0.8 < b < s2["end_s"] - 0.8
                  and abs(b - s1["end_s"]) > 0.2)
    asked = round(target + 0.06, 3)
    moved = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"end_s": asked})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["snapped"]["field"] == "end_s" and body["snapped"]["asked_s"] == asked
    cut = body["snapped"]["cut_s"]
    assert abs(cut - target) <= 1 / fps / 2 + 1e-9
    assert body["plan"]["shots"][0]["end_s"] == body["plan"]["shots"][1]["start_s"] == cut
    assert body["plan"]["shots"][1]["end_s"] == s2["end_s"]
    assert {c["shot_id"] for c in body["diff"]["changes"]} == {"s001", "s002"}
    assert all("image" not in c["renders"] for c in body["diff"]["changes"])
    # Unsnapped, the cut keeps the time asked (on the frame grid).
    free = api.patch(f"/v1/jobs/{job_id}/shots/s002?snap=false", json={"start_s": asked})
    assert free.status_code == 200, free.text
    assert free.json()["snapped"] is None
    assert free.json()["plan"]["shots"][1]["start_s"] == round(asked * fps) / fps

    # Rule breaks name the shot, the field and the rule; the plan stays as it was.
    version = api.get(f"/v1/jobs/{job_id}/plan").json()["version"]
    short = api.patch(f"/v1/jobs/{job_id}/shots/s001?snap=false",
                      json={"end_s": s1["start_s"] + 0.3})
    assert short.status_code == 422
    problem = short.json()["problems"][0]
    assert (problem["shot"], problem["field"]) == ("s001", "end_s") and "0.5 s" in problem["rule"]
    start = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"start_s": 0.5})
    assert start.status_code == 422
    problem = start.json()["problems"][0]
    assert (problem["shot"], problem["field"]) == ("s001", "start_s")
    assert "first shot" in problem["rule"]
    both = api.patch(f"/v1/jobs/{job_id}/shots/s002", json={"start_s": 3, "end_s": 6})
    assert both.status_code == 422 and "one cut" in both.json()["detail"]
    text = api.patch(f"/v1/jobs/{job_id}/shots/s002", json={"start_s": "soon"})
    assert text.status_code == 422 and text.json()["problems"][0]["field"] == "start_s"
    flag = api.patch(f"/v1/jobs/{job_id}/shots/s002?snap=maybe", json={"start_s": 3})
    assert flag.status_code == 400 and flag.json()["field"] == "snap"
    assert api.get(f"/v1/jobs/{job_id}/plan").json()["version"] == version

    # An edited picture is drawn again; the others are not.
    last_id = api.get(f"/v1/jobs/{job_id}").json()["events"]
    kept = {p: p.stat().st_mtime_ns for p in folder.glob("*.png")}
    edited = api.patch(f"/v1/jobs/{job_id}/shots/s002",
                       json={"image_prompt": "paper lanterns, close"})
    assert edited.status_code == 200 and edited.json()["diff"]["stale"] == ["s002"]
    later = read_events(api, job_id, lambda seen: seen[-1]["event"] == "preview", last_id)
    landed = [e["data"] for e in later if e["event"] == "preview"]
    assert [(d["shot_id"], d["plan_version"]) for d in landed] == \
        [("s002", edited.json()["version"])]
    fresh = api.get(landed[0]["url"])
    assert fresh.status_code == 200 and fresh.content != api.get(
        f"/v1/jobs/{job_id}/shots/s001/preview").content
    assert sorted(p.name for p in folder.glob("*.png") if p in kept) == sorted(
        p.name for p in kept if not p.name.startswith("s002-"))
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items() if p.exists())
    assert api.post(f"/v1/jobs/{job_id}:cancel").json()["status"] == "cancelled"


def test_a_shot_of_a_done_job_is_regenerated_as_the_next_version(
        api: httpx.Client, services: str, home: Path) -> None:
    job_id = new_job(api, seed=11, duration_s=9)["id"]
    job = wait_for(api, job_id, "awaiting_review")
    shots = job["plan"]["shots"]
    assert len(shots) >= 2
    busy = api.post(f"/v1/jobs/{job_id}/shots/s001:regenerate", json={})
    assert busy.status_code == 409 and busy.json()["reason"] == "JOB_STATE"
    assert api.post(f"/v1/jobs/{job_id}:approve").status_code == 202
    wait_for(api, job_id, "done", timeout=120)
    folder = home / "studio" / "jobs" / job_id

    assert api.post(f"/v1/jobs/{job_id}/shots/s999:regenerate").status_code == 404
    for body, field in (({"seed": -1}, "seed"), ({"seed": "x"}, "seed"),
                        ({"colour": "red"}, "colour"), ({"image_prompt": 5}, "image_prompt")):
        refused = api.post(f"/v1/jobs/{job_id}/shots/s002:regenerate", json=body)
        assert refused.status_code == 400 and field in refused.json()["detail"], refused.text
    assert api.post("/v1/jobs/job-nope/shots/s001:regenerate").status_code == 404

    regenerated = api.post(f"/v1/jobs/{job_id}/shots/s002:regenerate",
                           json={"image_prompt": "the stalls from above"})
    assert regenerated.status_code == 202, regenerated.text
    new_id = regenerated.json()["id"]
    assert new_id != job_id and regenerated.json()["status"] in ("created", "running")
    steps = [e["data"] for e in sse(api, new_id) if e["event"] == "step"
             and e["data"]["state"] == "done"]
    done = wait_for(api, new_id, "done", timeout=120)
    new_plan = done["plan"]["shots"]
    assert new_plan[1]["image_prompt"] == "the stalls from above"
    assert new_plan[1]["seed"] == shots[1]["seed"]  # a prompt given, the seed kept
    assert [s["seed"] for s in new_plan[2:]] == [s["seed"] for s in shots[2:]]

    # Only s002 and the assembly rendered again: every other step is a cache hit.
    ledger = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines()]
    renders = [e for e in ledger if e["kind"] in ("image", "video")]
    assert {(e["shot_id"], e["kind"]) for e in renders if not e["cache_hit"]} == \
        {("s002", "image"), ("s002", "video")}
    assert {e["shot_id"] for e in renders if e["cache_hit"]} == \
        {s["id"] for s in shots} - {"s002"}
    edit = next(e for e in ledger if e["kind"] == "edit")["data"]
    assert (edit["parent_job"], edit["regenerated"]) == (job_id, "s002")
    # The event stream said the same, with each step's provenance.
    assert {(s["shot_id"], s["step"]): s["cache_hit"] for s in steps} == \
        {(e["shot_id"], e["kind"]): e["cache_hit"] for e in renders}
    image = next(s for s in steps if (s["shot_id"], s["step"]) == ("s002", "image"))
    assert (image["model"], image["seed"], image["license"]) == \
        ("previz-v1", new_plan[1]["seed"], renders[0]["record"]["model"]["rights"]["license"])
    assert "weights_sha256" in image

    # The earlier version is kept, and both verify.
    assert (folder / "versions" / "v1" / "video.mp4").is_file()
    assert json.loads((folder / "job.json").read_text())["job_id"] == new_id
    for checked in (folder, folder / "versions" / "v1"):
        verified = subprocess.run([KANTOKU, "rights", "verify", str(checked)],
                                  capture_output=True, text=True, timeout=60)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    old = api.get(f"/v1/jobs/{job_id}").json()
    assert old["status"] == "done" and "video.mp4" in {o["name"] for o in old["outputs"]}
    assert (old["newest_version"], done["newest_version"]) == (new_id, None)
    assert api.get(f"/v1/jobs/{job_id}/files/video.mp4").content == \
        (folder / "versions" / "v1" / "video.mp4").read_bytes()
    superseded = api.post(f"/v1/jobs/{job_id}/shots/s001:regenerate")
    assert superseded.status_code == 409 and "versions/v1" in superseded.json()["detail"]

    # A studio started again finds both versions, each in its own folder.
    with running_studio(services) as url, httpx.Client(base_url=url, timeout=30) as second:
        listed = {j["id"]: j for j in second.get("/v1/jobs").json()}
        assert listed[new_id]["status"] == listed[job_id]["status"] == "done"
        assert listed[job_id]["newest_version"] == new_id
        assert second.get(f"/v1/jobs/{job_id}/files/video.mp4").content == \
            (folder / "versions" / "v1" / "video.mp4").read_bytes()
        assert second.get(f"/v1/jobs/{new_id}/files/video.mp4").content == \
            (folder / "video.mp4").read_bytes()

    # A new seed when none is given.
    again = api.post(f"/v1/jobs/{new_id}/shots/s001:regenerate")
    assert again.status_code == 202, again.text
    third = wait_for(api, again.json()["id"], "done", timeout=120)
    assert third["plan"]["shots"][0]["seed"] != new_plan[0]["seed"]
    assert (folder / "versions" / "v2" / "video.mp4").is_file()


def test_a_job_without_a_song_has_an_empty_timeline(api: httpx.Client, services: str) -> None:
    job_id = new_job(api, seed=12, duration_s=9)["id"]
    job = wait_for(api, job_id, "awaiting_review")
    strip = api.get(f"/v1/jobs/{job_id}/timeline").json()
    assert strip == {"duration_s": 9.0, "fps": job["plan"]["fps"], "beats_s": [],
                     "downbeats_s": [], "sections": [], "lyrics": [], "waveform": None}
    missing = api.get("/v1/jobs/job-nope/timeline")
    assert missing.status_code == 404 and missing.json()["reason"] == "JOB_NOT_FOUND"
    unknown = api.get(f"/v1/jobs/{job_id}/shots/s999/preview")
    assert unknown.status_code == 404 and unknown.json()["reason"] == "SHOT_NOT_FOUND"
    # Moving a cut without a song: only the frame grid.
    moved = api.patch(f"/v1/jobs/{job_id}/shots/s001", json={"end_s": 1.2345})
    assert moved.status_code == 200, moved.text
    assert moved.json()["snapped"] is None
    assert moved.json()["plan"]["shots"][0]["end_s"] == round(1.2345 * job["plan"]["fps"]) / \
        job["plan"]["fps"]

    # A studio started again serves the previews it drew, and says so again as events.
    read_events(api, job_id, lambda seen: {e["data"]["shot_id"] for e in seen
                                           if e["event"] == "preview"} >= {"s001", "s002"})
    drawn = api.get(f"/v1/jobs/{job_id}/shots/s001/preview").content
    with running_studio(services) as url, httpx.Client(base_url=url, timeout=30) as second:
        assert second.get(f"/v1/jobs/{job_id}/shots/s001/preview").content == drawn
        read_events(second, job_id, lambda seen: any(e["event"] == "preview" for e in seen))
    api.post(f"/v1/jobs/{job_id}:cancel")
