"""The studio under a director's eyes: how soon the plan is seen, how fresh the events are, and
what running jobs side by side buys.

1. Time from `POST /v1/jobs` (a 30 s song with lyrics, as a form) to the first storyboard frame
   visible: the first `preview` event and its PNG fetched (goal: under 3 s on 2 cores).
2. Event latency: from a job emitting an event (a render step done, a shot done) to a client of
   its SSE stream reading it; the studio runs in this process, so both ends share one clock.
3. Eight short jobs run one after another, then the same eight at once: total time and ratio.

The services run as `kantoku serve ... --standalone` in another process, as in a deployment.
Run: .venv/bin/python bench/studio.py [--jobs 8] [--song-s 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KANTOKU = str(Path(sys.executable).with_name("kantoku"))
BRIEF = {"title": "Night market", "logline": "Mei walks through a night market at dusk",
         "seed": 5, "resolution": "480p", "aspect": "9:16", "locations": ["night market"],
         "characters": [{"name": "Mei", "description": "yellow raincoat"}]}
SONG_RIGHTS = {"title": "Bench", "holder": "kantoku project", "license": "CC0-1.0",
               "commercial_use": True}
#: When each event was emitted, by (job id, event id), in this process's perf_counter.
EMITTED: dict[tuple[str, int], float] = {}


def song_maker() -> Any:
    spec = importlib.util.spec_from_file_location("make_song", ROOT / "examples" / "make_song.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def services() -> Iterator[str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from kantoku.services._core.server import free_port

    port = free_port()
    process = subprocess.Popen([KANTOKU, "serve", "image", "video", "--standalone", "--port",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with grpc.insecure_channel(address) as channel:
                    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=1)
                break
            except grpc.RpcError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the services did not start") from None
                time.sleep(0.2)
        yield address
    finally:
        process.kill()
        process.wait()


@contextmanager
def studio(address: str) -> Iterator[str]:
    import uvicorn

    from kantoku.agents.studio import jobs
    from kantoku.agents.studio.app import create_app
    from kantoku.services._core.server import free_port

    add_event = jobs.StudioJob.add_event

    def stamped(self: jobs.StudioJob, event: Any) -> None:
        add_event(self, event)
        EMITTED[(self.id, len(self.events))] = time.perf_counter()

    jobs.StudioJob.add_event = stamped  # type: ignore[method-assign]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(server=address), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def events(api: Any, job_id: str, until: set[str]) -> Iterator[tuple[float, dict[str, Any]]]:
    """(time read, event) for the job's events until one whose name is in `until`."""
    current: dict[str, Any] = {}
    with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=300) as response:
        for line in response.iter_lines():
            if not line:
                if "data" in current:
                    yield time.perf_counter(), current
                    if current.get("event") in until:
                        return
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


def first_preview(api: Any, work: Path, song_s: float) -> tuple[float, float]:
    """(seconds to the job's answer, seconds to the first preview PNG in hand)."""
    maker = song_maker()
    song = work / "song.wav"
    if not song.exists():
        maker.write_wav(song, maker.synthesize(song_s))
    lyrics = "\n".join(f"[00:{t:02d}.00]lanterns in the rain, line {t}"
                       for t in range(2, int(song_s) - 1, 4))
    started = time.perf_counter()
    created = api.post("/v1/jobs", data={"planner": "heuristic"}, files={
        "brief": ("brief.json", json.dumps({**BRIEF, "song": SONG_RIGHTS}).encode()),
        "song": ("song.wav", song.read_bytes(), "audio/wav"),
        "lyrics": ("song.lrc", lyrics.encode())})
    answered = time.perf_counter() - started
    if created.status_code != 201:
        raise SystemExit(f"POST /v1/jobs: {created.status_code} {created.text}")
    job_id = created.json()["id"]
    for _, event in events(api, job_id, {"preview", "failed"}):
        if event["event"] == "preview":
            png = api.get(event["data"]["url"])
            assert png.status_code == 200 and png.content[:4] == b"\x89PNG", png.status_code
            seen = time.perf_counter() - started
            api.post(f"/v1/jobs/{job_id}:cancel")
            return answered, seen
    raise SystemExit(f"{job_id}: no preview event")


def run_job(api: Any, duration_s: float, seed: int) -> list[float]:
    """One job from POST to done; the latency of each render event it streamed, in seconds."""
    created = api.post("/v1/jobs", json={"brief": {**BRIEF, "duration_s": duration_s,
                                                   "seed": seed}})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    while api.get(f"/v1/jobs/{job_id}").json()["status"] != "awaiting_review":
        time.sleep(0.05)
    assert api.post(f"/v1/jobs/{job_id}:approve").status_code == 202
    latencies = []
    for read, event in events(api, job_id, set()):
        emitted = EMITTED.get((job_id, event["id"]))
        if emitted is not None and event["event"] in ("step", "shot_done"):
            latencies.append(read - emitted)
    status = api.get(f"/v1/jobs/{job_id}").json()["status"]
    assert status == "done", f"{job_id} ended {status}"
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--song-s", type=float, default=30)
    parser.add_argument("--job-s", type=float, default=6, help="running time of each job")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kantoku-studio-bench-") as folder:
        work = Path(folder)
        os.environ["KANTOKU_HOME"] = str(work / "home")
        import httpx

        with services() as address, studio(address) as url, \
                httpx.Client(base_url=url, timeout=300) as api:
            previews = [first_preview(api, work, args.song_s) for _ in range(3)]
            answered = statistics.median(a for a, _ in previews)
            seen = statistics.median(s for _, s in previews)
            print(f"first storyboard frame, {args.song_s:g} s song: {seen:.2f} s after POST "
                  f"(median of 3; the POST itself answers in {answered:.2f} s); goal 3 s: "
                  f"{seen / 3:.2f} of it; the studio's first job, sent as it started: "
                  f"{previews[0][1]:.2f} s", flush=True)

            started = time.perf_counter()
            latencies = [x for seed in range(args.jobs)
                         for x in run_job(api, args.job_s, 100 + seed)]
            one_by_one = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(args.jobs) as pool:
                for found in pool.map(lambda s: run_job(api, args.job_s, 200 + s),
                                      range(args.jobs)):
                    latencies += found
            together = time.perf_counter() - started
        ms = sorted(1000 * x for x in latencies)
        print(f"event latency, step done -> SSE client: median {statistics.median(ms):.1f} ms, "
              f"p90 {ms[int(0.9 * (len(ms) - 1))]:.1f} ms over {len(ms)} events")
        print(f"{args.jobs} jobs of {args.job_s:g} s: one after another {one_by_one:.1f} s, "
              f"all at once {together:.1f} s; ratio {together / one_by_one:.2f} "
              f"(speed-up {one_by_one / together:.2f}x)")


if __name__ == "__main__":
    main()
