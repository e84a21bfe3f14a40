"""Scheduling across machines: the job graph on a real multi-node Ray cluster.

A head and two worker nodes, each worker with 4 logical GPUs (one machine, three raylets:
`ray.cluster_utils.Cluster`), and a Ray Serve deployment of simulated GPU work (sleep in
proportion to the shot's length; one GPU and at most one request per replica, 8 replicas or
autoscaling between --min-replicas and 8). The job graph renders 64 varied shots, with the
shots in flight sized by Serve's live replica count (planner/capacity.py).

1. Makespan against the lower bound max(longest shot, total work / 8 GPUs).
2. The same with one worker node killed halfway: extra time against what losing 4 GPUs costs
   at best (the work left at the kill on 4 GPUs), and every shot rendered exactly once
   (finished renders counted in the ledger; a render cut off by the kill runs again).
Run: .venv/bin/python bench/cluster.py [--shots 64] [--scale 1] [--min-replicas 8]
     [--router least|pow2] [--only full|kill]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import heapq
import logging
import os
import statistics
import time
from typing import Any

# Serve hears of queued and running requests every 10 s by default (and averages over 30 s):
# right for renders of minutes, slow for a benchmark of seconds. Read when Serve is imported.
for _interval in ("HANDLE", "REPLICA"):
    os.environ.setdefault(f"RAY_SERVE_{_interval}_AUTOSCALING_METRIC_PUSH_INTERVAL_S", "0.5")

from orchestration import context, run_plan, varied_plan  # noqa: E402

from kantoku.planner.capacity import ServeCapacity, ShotSlots  # noqa: E402
from kantoku.planner.context import JobContext  # noqa: E402
from kantoku.planner.planning.plan import Plan, Shot  # noqa: E402
from kantoku.services.routing import least_loaded  # noqa: E402

GPUS_PER_WORKER = 4
WORKERS = 2
APP = "simulated"
#: Node failure is noticed within about a second (Ray's default is 5 misses of 3 s).
FAST_FAILURE_DETECTION = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                          "health_check_failure_threshold": 3}


def start_cluster() -> tuple[Any, list[Any]]:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
        "_system_config": FAST_FAILURE_DETECTION})
    workers = [cluster.add_node(num_cpus=1, num_gpus=GPUS_PER_WORKER) for _ in range(WORKERS)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
    return cluster, workers


def deploy(min_replicas: int, router: str) -> Any:
    from ray import serve

    gpus = GPUS_PER_WORKER * WORKERS
    replicas: dict[str, Any] = (
        {"num_replicas": gpus} if min_replicas >= gpus else
        {"autoscaling_config": {"min_replicas": min_replicas, "max_replicas": gpus,
                                "target_ongoing_requests": 1, "upscale_delay_s": 0.5,
                                "look_back_period_s": 2, "downscale_delay_s": 60}})

    routing = {"request_router_config": least_loaded()} if router == "least" else {}

    # One request at a time per replica: Serve's router (power of two choices on queue
    # length) then never queues a call behind a busy replica while another is idle.
    @serve.deployment(max_ongoing_requests=1, ray_actor_options={"num_gpus": 1, "num_cpus": 0},
                      health_check_period_s=1, health_check_timeout_s=2, **replicas, **routing)
    class SimulatedGpu:
        async def __call__(self, seconds: float) -> str:
            import ray

            await asyncio.sleep(seconds)
            return ray.get_runtime_context().get_node_id()

    serve.start(proxy_location="Disabled")
    return serve.run(SimulatedGpu.bind(), name=APP, route_prefix=None)


class Renders:
    """The simulated renderer: each finished render in the ledger; attempts cut off by a
    lost node are counted with the work they had done, and run again on another replica."""

    def __init__(self, handle: Any, work: dict[str, float]) -> None:
        self.handle, self.work = handle, work
        self.cut_off = 0
        self.lost_work_s = 0.0
        #: Per finished call: wall time at the caller minus the simulated work.
        self.call_overhead_s: list[float] = []

    async def __call__(self, ctx: JobContext, shot: Shot, plan: Plan, brief: Any
                       ) -> dict[str, Any]:
        from ray.exceptions import RayError

        while True:
            started = time.perf_counter()
            try:
                node = await self.handle.remote(self.work[shot.id])
                break
            except RayError:  # its replica died with the node: render it again elsewhere
                self.cut_off += 1
                self.lost_work_s += min(time.perf_counter() - started, self.work[shot.id])
                await asyncio.sleep(0.05)
        self.call_overhead_s.append(time.perf_counter() - started - self.work[shot.id])
        ctx.ledger.append(ctx.job_id, "video", shot_id=shot.id, data={"node": node})
        return {"shot_id": shot.id, "notes": []}


def finished_renders(ctx: JobContext) -> collections.Counter[str]:
    return collections.Counter(e["shot_id"] for e in ctx.ledger.entries(ctx.job_id)
                               if e["kind"] == "video")


def ordered_on_ideal_gpus(plan: Plan, work: dict[str, float], gpus: int) -> float:
    """The graph's dispatch order (longest first) on GPUs with no call overhead: what the
    order alone costs against the lower bound."""
    free = [0.0] * gpus
    for shot in sorted(plan.shots, key=lambda s: work[s.id], reverse=True):
        heapq.heapreplace(free, free[0] + work[shot.id])
    return max(free)


async def run(handle: Any, plan: Plan, work: dict[str, float], job_id: str,
              kill_after_s: float | None = None, kill: Any = None) -> dict[str, Any]:
    renders = Renders(handle, work)
    ctx = context(job_id, renders)
    limits: list[tuple[float, int]] = []
    started = time.perf_counter()
    ctx.slots = ShotSlots(ServeCapacity([APP]), poll_s=0.25,
                          on_limit=lambda n, _: limits.append((time.perf_counter() - started, n)))
    killer = None
    if kill_after_s is not None:
        async def killing() -> float:
            await asyncio.sleep(kill_after_s)
            at = time.perf_counter() - started
            await asyncio.to_thread(kill)
            return at
        killer = asyncio.ensure_future(killing())
    replicas: list[tuple[float, int]] = []

    async def sampling() -> None:  # RUNNING replicas over time, for the printout
        source = ServeCapacity([APP])
        while True:
            found = await source.read()
            count = sum(c.running for c in found or [])
            if not replicas or replicas[-1][1] != count:
                replicas.append((time.perf_counter() - started, count))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sampling())
    makespan = await run_plan(plan, ctx, concurrency=None)
    sampler.cancel()
    killed_at = await killer if killer else None
    finished = finished_renders(ctx)
    twice = sorted(s for s, n in finished.items() if n > 1)
    assert len(finished) == len(plan.shots), "a shot did not render"
    return {"makespan": makespan, "killed_at": killed_at, "renders": renders,
            "finished": finished, "twice": twice, "limits": limits, "replicas": replicas}


async def bench(shots: int, scale: float, min_replicas: int, router: str,
                only: str | None) -> list[str]:
    import ray
    from ray import serve

    gpus = GPUS_PER_WORKER * WORKERS
    plan = varied_plan(shots, seed=1)
    work = {s.id: s.duration_s * scale for s in plan.shots}
    total, longest = sum(work.values()), max(work.values())
    bound = max(longest, total / gpus)
    lines = []
    cluster, workers = start_cluster()
    asyncio.get_running_loop().set_exception_handler(quiet_lost_replicas)
    try:
        handle = deploy(min_replicas, router)
        await handle.remote(0.0)  # warm the router
        if only != "kill":
            full = await run(handle, plan, work, "cluster-full")
            calls = full["renders"].call_overhead_s
            lines.append(
                f"[1] {shots} shots on {WORKERS} workers x {GPUS_PER_WORKER} logical GPUs (Ray "
                f"Serve, {describe(min_replicas, gpus)}, {router} router): total work "
                f"{total:.2f} s, lower bound {bound:.2f} s, makespan {full['makespan']:.2f} s → "
                f"efficiency {bound / full['makespan']:.1%}\n"
                f"    longest-first order on overhead-free GPUs: "
                f"{bound / ordered_on_ideal_gpus(plan, work, gpus):.1%} of the bound; Serve's "
                f"call path {statistics.median(calls) * 1000:.0f} ms per call (median, at the "
                f"caller, less the work); shots in flight: {steps(full)}")
            if min_replicas < gpus:  # the second run starts from the same replicas
                await wait_running(gpus)
        if only != "full":
            lost = await run(handle, plan, work, "cluster-kill", kill_after_s=bound / 2,
                             kill=lambda: cluster.remove_node(workers[-1], allow_graceful=False))
            at, renders = lost["killed_at"], lost["renders"]
            left = max(0.0, total - gpus * at)
            ideal = at + left / (gpus - GPUS_PER_WORKER)
            redone = ideal + renders.lost_work_s / (gpus - GPUS_PER_WORKER)
            lines.append(
                f"[2] one worker killed at {at:.2f} s ({GPUS_PER_WORKER} of {gpus} GPUs lost): "
                f"makespan {lost['makespan']:.2f} s; at best {ideal:.2f} s (the {left:.2f} s of "
                f"work left at the kill on {gpus - GPUS_PER_WORKER} GPUs) → efficiency "
                f"{ideal / lost['makespan']:.1%}\n"
                f"    extra time over the lower bound {lost['makespan'] - bound:.2f} s against "
                f"{ideal - bound:.2f} s that the lost capacity costs at best; {renders.cut_off} "
                f"renders cut off by the kill ({renders.lost_work_s:.2f} s of work lost) and run "
                f"again; with that work redone, at best {redone:.2f} s → efficiency "
                f"{redone / lost['makespan']:.1%}\n"
                f"    finished renders {sum(lost['finished'].values())} for "
                f"{len(lost['finished'])} shots, rendered twice: {len(lost['twice'])} "
                f"{lost['twice'] or ''}; shots in flight: {steps(lost)}")
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()
    return lines


def quiet_lost_replicas(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Serve's router probes replicas in tasks nobody awaits; those on the killed node fail
    (the router drops them), which is the point of the run, not news."""
    from ray.exceptions import ActorDiedError, ActorUnavailableError

    if isinstance(context.get("exception"), (ActorDiedError, ActorUnavailableError)):
        return
    loop.default_exception_handler(context)


def describe(min_replicas: int, gpus: int) -> str:
    if min_replicas >= gpus:
        return f"{gpus} replicas, 1 GPU each"
    return f"autoscaling {min_replicas}..{gpus} replicas, 1 GPU each"


def steps(result: dict[str, Any]) -> str:
    """Shots in flight and RUNNING replicas, as they changed."""
    def changes(points: list[tuple[float, int]]) -> str:
        return " → ".join(f"{n} at {t:.1f} s" for t, n in points) or "-"
    return f"{changes(result['limits'])}; replicas running: {changes(result['replicas'])}"


async def wait_running(replicas: int, timeout_s: float = 60) -> None:
    source = ServeCapacity([APP])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await source.read()
        if found and sum(c.running for c in found) >= replicas:
            return
        await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="simulated seconds of GPU work per second of shot (a real video "
                             "model takes minutes per second)")
    parser.add_argument("--min-replicas", type=int, default=GPUS_PER_WORKER * WORKERS,
                        help="below 8: Serve autoscales the replicas from this many up to 8")
    parser.add_argument("--router", choices=["least", "pow2"], default="least",
                        help="least: kantoku's least-loaded router; pow2: Serve's default")
    parser.add_argument("--only", choices=["full", "kill"], help="run one of the two")
    args = parser.parse_args()
    lines = asyncio.run(bench(args.shots, args.scale, args.min_replicas, args.router,
                              args.only))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
