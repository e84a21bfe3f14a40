"""Orchestration cost and scheduling quality of the job graph.

1. Per-shot overhead: the whole graph (SQLite checkpoints, Send fan-out, reducers, ledger) with
   instant backends, against calling the same instant backend directly in-process.
2. Scheduling efficiency: 64 shots of varied simulated work on a Ray Serve deployment with one
   replica per logical GPU (8), dispatched by the graph; makespan against the lower bound
   max(longest shot, total work / GPUs).
Run: .venv/bin/python bench/orchestration.py [--shots 64] [--gpus 8] [--scale 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

WORK_HOME = Path(tempfile.mkdtemp(prefix="kantoku-bench-"))
os.environ["KANTOKU_HOME"] = str(WORK_HOME)

from kantoku.planner.cache import RenderCache  # noqa: E402
from kantoku.planner.context import JobContext  # noqa: E402
from kantoku.planner.graph import build_graph  # noqa: E402
from kantoku.planner.jobs import open_checkpointer  # noqa: E402
from kantoku.planner.planning.brief import parse_brief  # noqa: E402
from kantoku.planner.planning.plan import Plan, Shot  # noqa: E402
from kantoku.planner.rights.ledger import SqliteLedger  # noqa: E402
from kantoku.services._core.assets import AssetStore  # noqa: E402


def brief_for(duration_s: float) -> dict[str, Any]:
    return parse_brief({"title": "bench", "duration_s": duration_s}).model_dump(mode="json")


def varied_plan(shots: int, seed: int = 0) -> Plan:
    """Shots of 0.5 to 8 s (log-uniform): render work grows with a shot's frames."""
    rng = random.Random(seed)
    lengths = [round(2 ** rng.uniform(-1, 3) * 30) / 30 for _ in range(shots)]
    starts = [sum(lengths[:i]) for i in range(shots)]
    return Plan(title="bench", duration_s=sum(lengths), width_px=720, height_px=1280, fps=30,
                shots=[Shot(id=f"s{i + 1:03d}", start_s=s, end_s=s + n)
                       for i, (s, n) in enumerate(zip(starts, lengths, strict=True))])


def context(job_id: str, renderer: Any) -> JobContext:
    store = AssetStore(WORK_HOME / "assets")
    return JobContext(job_id=job_id, out_dir=WORK_HOME / job_id, client=None,  # type: ignore
                      store=store, cache=RenderCache(WORK_HOME / "cache", store),
                      ledger=SqliteLedger(WORK_HOME / "ledger.sqlite"), renderer=renderer)


async def run_plan(plan: Plan, ctx: JobContext, concurrency: int | None) -> float:
    """Run review → fan-out → render → collect for `plan`; returns seconds. `concurrency`
    None: the graph runs every shot task, and the context's slots hold them back."""
    graph = build_graph(until="collect")
    async with open_checkpointer() as saver:
        compiled = graph.compile(checkpointer=saver)
        config: dict[str, Any] = {"configurable": {"thread_id": ctx.job_id},
                                  "max_concurrency": concurrency}
        state = {"job_id": ctx.job_id, "brief": brief_for(min(plan.duration_s, 600)),
                 "plan": plan.model_dump(mode="json"), "policy": {}, "auto_approve": True,
                 "shots": {}, "notes": []}
        await compiled.aupdate_state(config, state, as_node="policy_gate")
        started = time.perf_counter()
        async for _ in compiled.astream(None, config, context=ctx):
            pass
        elapsed = time.perf_counter() - started
        values = (await compiled.aget_state(config)).values
    assert len(values["shots"]) == len(plan.shots), "not every shot rendered"
    return elapsed


async def instant(ctx: JobContext, shot: Shot, plan: Plan, brief: Any) -> dict[str, Any]:
    ctx.ledger.append(ctx.job_id, "image", shot_id=shot.id)
    return {"shot_id": shot.id, "notes": []}


async def overhead(shots: int) -> None:
    plan = varied_plan(shots)
    ctx = context("overhead-direct", instant)
    started = time.perf_counter()
    for shot in plan.shots:
        await instant(ctx, shot, plan, None)
    direct = time.perf_counter() - started
    graph = await run_plan(plan, context("overhead-graph", instant), concurrency=shots)
    per_shot = (graph - direct) / shots * 1000
    print(f"[1] {shots} shots, instant backends: direct {direct * 1000:.1f} ms, graph "
          f"{graph * 1000:.1f} ms → {per_shot:.2f} ms overhead per shot "
          f"(graph/direct {graph / direct:.1f}x)")


async def scheduling(shots: int, gpus: int, scale: float) -> None:
    import ray
    from ray import serve

    @serve.deployment(num_replicas=gpus, max_ongoing_requests=1,
                      ray_actor_options={"num_gpus": 1, "num_cpus": 0})
    class SimulatedGpu:
        async def __call__(self, seconds: float) -> float:
            await asyncio.sleep(seconds)
            return seconds

    ray.init(address="local", num_cpus=2, num_gpus=gpus, include_dashboard=False,
             log_to_driver=False)
    try:
        handle = serve.run(SimulatedGpu.bind(), name="simulated", route_prefix=None)
        plan = varied_plan(shots, seed=1)
        work = {s.id: s.duration_s * scale for s in plan.shots}

        async def on_gpu(ctx: JobContext, shot: Shot, plan: Plan, brief: Any) -> dict[str, Any]:
            await handle.remote(work[shot.id])
            return {"shot_id": shot.id, "notes": []}

        await handle.remote(0.0)  # warm the router
        # In flight = the replicas' capacity: the graph keeps the queue, longest work first.
        makespan = await run_plan(plan, context("scheduling", on_gpu), concurrency=gpus)
        bound = max(max(work.values()), sum(work.values()) / gpus)
        print(f"[2] {shots} shots on {gpus} logical GPUs (Ray Serve, 1 replica per GPU): "
              f"total work {sum(work.values()):.2f} s, lower bound {bound:.2f} s, makespan "
              f"{makespan:.2f} s → efficiency {bound / makespan:.1%}")
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.5,
                        help="simulated seconds of GPU work per second of shot")
    args = parser.parse_args()
    asyncio.run(overhead(args.shots))
    asyncio.run(scheduling(args.shots, args.gpus, args.scale))


if __name__ == "__main__":
    main()
