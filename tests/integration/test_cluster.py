"""kantoku on a three-host Ray cluster: a head and two GPU workers, each in its own network
namespace with its own address (tests/integration/netns_cluster.py).

`kantoku up --address` from the head deploys the services onto the cluster: image and video
replicas on the workers' (logical) GPUs, the rest wherever CPUs are. A music-video job from the
head, with as many shots in flight as the services report replicas for, renders shots on both
workers; one worker is killed (kill -9, every process on it) mid-job; Serve starts its replicas
again on the other, the client retries the calls in flight, the job finishes with no step
rendered twice, and the worker, started again, rejoins and takes replicas.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration import netns_cluster
from tests.integration.netns_cluster import NetnsCluster

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(netns_cluster.missing() is not None,
                       reason=f"three-host Ray cluster: {netns_cluster.missing()}"),
]
KANTOKU = str(Path(sys.executable).with_name("kantoku"))
GPU_KIND = "SIM"  # the workers' logical GPUs, declared as Ray's accelerator_type resource
#: Two replicas of each GPU service at half a GPU: one of each per worker, and room on either
#: worker (two logical GPUs) for all four when the other is gone.
SERVICES_ENV = {
    **{f"KANTOKU_{name}_{key}": value for name in ("IMAGE", "VIDEO") for key, value in
       (("NUM_GPUS", "0.5"), ("NUM_REPLICAS", "2"), ("ACCELERATOR_TYPE", GPU_KIND),
        ("DEVICE", "cpu"))},
    "COLUMNS": "200",  # `kantoku status` prints its whole table
}
RENDERS = ("image", "video")
#: A third image replica: the surviving worker's two GPUs are taken, so the worker that rejoined
#: takes it (serve.run returns once every replica runs).
SCALE_IMAGE = ("import logging, ray; from kantoku.services import hosting; "
               "ray.init(address='{}', logging_level=logging.ERROR); hosting.deploy(['image'])")


def replicas(cluster: NetnsCluster) -> dict[str, list[str]]:
    """Per service, the node address of each running replica, as `kantoku status` prints it."""
    shown = cluster.run(cluster.head, KANTOKU, "status", env=SERVICES_ENV, timeout=60)
    assert shown.returncode == 0, shown.stderr
    rows = {}
    for line in shown.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[1] == "RUNNING":
            rows[cells[0]] = re.findall(r"[\d.]+\d", cells[3])
    return rows


def wait_for(what: str, check, timeout_s: float, every_s: float = 1.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def rendered_on(home: Path, job: str) -> Counter:
    """How many image/video steps each node has finished so far in `job` (the live ledger)."""
    from kantoku.planner.rights.ledger import SqliteLedger

    path = home / "ledger.sqlite"
    if not path.exists():
        return Counter()
    return Counter(e["record"]["worker"].get("node_ip", "")
                   for e in SqliteLedger(path).entries(job)
                   if e["kind"] in RENDERS and not e["cache_hit"])


@pytest.mark.timeout(600)  # about two minutes on two idle cores; more on a busy machine
def test_a_job_survives_losing_a_worker_and_the_worker_rejoins(tmp_path: Path) -> None:
    from tests.conftest import make_song
    from tests.integration.test_mv import brief_with

    song = make_song(tmp_path / "song.wav", 12)
    brief = brief_with(tmp_path, duration_s=12)
    home, out = tmp_path / "home", tmp_path / "out"
    with netns_cluster.netns_cluster(["gpu1", "gpu2"], home) as cluster:
        head, lost, kept = (cluster.hosts[r] for r in ("head", "gpu1", "gpu2"))
        cluster.start_ray(head, num_cpus=2)
        cluster.start_workers([lost, kept], num_cpus=2, num_gpus=2,
                              resources={f"accelerator_type:{GPU_KIND}": 2})
        up = cluster.run(head, KANTOKU, "up", "--address", cluster.gcs_address, "--no-studio",
                         "--no-llm", env=SERVICES_ENV)
        assert up.returncode == 0, up.stdout + up.stderr
        placed = replicas(cluster)
        assert set(placed) == {"tts", "motion", "asr", "image", "video"}, placed
        for name in RENDERS:
            assert sorted(placed[name]) == sorted([lost.ip, kept.ip]), placed

        # A job from the head; once both workers have finished shots, one of them is lost.
        job_log = tmp_path / "mv.log"
        job = cluster.popen(head, KANTOKU, "mv", str(brief), "--song", str(song), "--out",
                            str(out), "--yes", "--planner", "heuristic", log=job_log,
                            env={"COLUMNS": "200"})
        job_id = wait_for("job.json", lambda: (out / "job.json").exists() and json.loads(
            (out / "job.json").read_text())["job_id"], 60, 0.2)
        before = wait_for("shots rendered on both workers", lambda: (
            (seen := rendered_on(home, job_id))[lost.ip] and seen[kept.ip] and seen), 120, 0.2)
        assert job.poll() is None, "the job finished before a worker could be lost"
        cluster.kill(lost)
        lost_at = datetime.now(UTC)
        code = job.wait(timeout=300)
        if code == 7:  # a call outlived its retries while the node was being declared dead
            resumed = cluster.run(head, KANTOKU, "resume", job_id, "--yes", timeout=300)
            code = resumed.returncode
            assert code == 0, job_log.read_text() + resumed.stdout + resumed.stderr
        assert code == 0, job_log.read_text()
        # The job, outside Ray, sized its shots in flight by what the services reported.
        assert ("shots in flight: 4 (image: 2 replicas x 1 request, video: 2 replicas x 1 "
                "request)") in job_log.read_text()

        entries = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
        plan = json.loads((out / "plan.json").read_text())
        made = Counter((e["kind"], e["shot_id"]) for e in entries
                       if e["kind"] in RENDERS and not e["cache_hit"])
        assert max(made.values()) == 1, f"steps rendered twice: {made}"
        shots = {shot["id"] for shot in plan["shots"]}
        for kind in RENDERS:
            assert {shot for k, shot in made if k == kind} == shots, kind
        nodes = Counter(e["record"]["worker"]["node_ip"] for e in entries
                        if e["kind"] in RENDERS and not e["cache_hit"])
        assert set(nodes) == {lost.ip, kept.ip}, nodes
        assert nodes[kept.ip] > before[kept.ip], (before, nodes)  # the rest went to the survivor
        settled = lost_at + timedelta(seconds=2)  # a result already on its way may land later
        after = {e["record"]["worker"]["node_ip"] for e in entries if e["kind"] in RENDERS
                 and datetime.fromisoformat(e["timestamp"]) > settled and not e["cache_hit"]}
        assert after <= {kept.ip}, after
        assert (out / "video.mp4").is_file()

        # Serve has started the lost replicas again on the surviving worker.
        wait_for("the GPU replicas on the surviving worker", lambda: all(
            replicas(cluster).get(name) == [kept.ip, kept.ip] for name in RENDERS), 90, 2)

        # The lost worker comes back, rejoins, and takes replicas again: a third image replica
        # (the survivor's two GPUs are taken).
        cluster.restart_ray(lost)
        wait_for("the worker to rejoin", lambda: lost.ip in cluster.alive_nodes(), 60, 1)
        grown = cluster.run(head, sys.executable, "-c", SCALE_IMAGE.format(cluster.gcs_address),
                            env={**SERVICES_ENV, "KANTOKU_IMAGE_NUM_REPLICAS": "3"})
        assert grown.returncode == 0, grown.stderr
        image = replicas(cluster)["image"]
        assert len(image) == 3 and lost.ip in image, image
        down = cluster.run(head, KANTOKU, "down")
        assert down.returncode == 0, down.stderr
