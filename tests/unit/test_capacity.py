"""Shots in flight follow the services' live capacity (a fake capacity source here)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from kantoku.planner.capacity import (
    FALLBACK_SHOTS,
    ServiceCapacity,
    ShotSlots,
    capacity_event,
    shot_limit,
)
from kantoku.planner.graph import build_graph
from kantoku.planner.jobs import JobSettings
from kantoku.services._core.errors import KantokuError, unavailable
from kantoku.services.capacity import DeploymentCapacity, capacities_from_details
from kantoku.v1 import common_pb2


def running(n: int, app: str = "video", per_replica: int = 1, **scaling: Any
            ) -> DeploymentCapacity:
    return DeploymentCapacity(app, f"{app}-service", n, per_replica, **scaling)


class FakeSource:
    """Replica counts a test sets while shots render."""

    def __init__(self, *capacities: DeploymentCapacity) -> None:
        self.capacities: list[DeploymentCapacity] | None = list(capacities)

    async def read(self) -> list[DeploymentCapacity] | None:
        return self.capacities


def test_the_limit_is_the_running_slots_of_image_and_video_capped_by_the_setting() -> None:
    both = [running(2, "image", per_replica=2), running(3, "video")]
    assert shot_limit(both, cap=None) == 7
    assert shot_limit(both, cap=5) == 5
    assert shot_limit(None, cap=None) == FALLBACK_SHOTS
    assert shot_limit(None, cap=6) == 6
    assert shot_limit([running(0)], cap=None) == 1  # replicas restarting: one waits in Serve


def test_autoscaling_room_asks_for_the_replicas_serve_may_still_add() -> None:
    growing = running(1, max_replicas=3, target_ongoing_requests=2.0)
    assert growing.slots == 1 and growing.demand == 6
    at_max = running(3, max_replicas=3, target_ongoing_requests=2.0)
    assert at_max.demand == 3
    assert running(0, max_replicas=2, target_ongoing_requests=1.0).demand == 2  # from zero


def test_serve_details_are_read_for_running_replicas_only() -> None:
    details = {"applications": {
        "video": {"deployments": {"video-service": {
            "deployment_config": {"max_ongoing_requests": 2, "autoscaling_config": {
                "min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 1.0}},
            "replicas": [{"state": "RUNNING"}, {"state": "RUNNING"}, {"state": "STARTING"},
                         {"state": "PENDING_ALLOCATION"}]}}},
        "tts": {"deployments": {"tts-service": {"deployment_config": {}, "replicas": []}}}}}
    (video,) = capacities_from_details(details, ["image", "video"])
    assert (video.running, video.slots, video.max_replicas, video.demand) == (2, 4, 4, 4)


async def test_in_flight_follows_replicas_added_and_lost_while_shots_render() -> None:
    source = FakeSource(running(2))
    slots = ShotSlots(source, poll_s=0.01)
    peak: list[int] = []
    release = asyncio.Event()

    async def shot() -> None:
        async with slots.slot():
            peak.append(slots.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(shot()) for _ in range(10)]
    await asyncio.sleep(0.05)
    assert slots.in_flight == 2
    source.capacities = [running(5)]  # autoscaling added three replicas
    await asyncio.sleep(0.05)
    assert slots.in_flight == 5
    source.capacities = [running(1)]  # a node went away with four of them
    await asyncio.sleep(0.05)
    assert slots.in_flight == 5  # shots already running are not stopped
    release.set()
    await asyncio.gather(*tasks)
    assert max(peak) == 5 and slots.in_flight == 0


async def test_after_a_loss_no_new_shot_starts_until_in_flight_is_below_the_limit() -> None:
    source = FakeSource(running(4))
    slots = ShotSlots(source, poll_s=0.01)
    active, most_after_loss = 0, 0
    lost = asyncio.Event()

    async def shot(seconds: float) -> None:
        nonlocal active, most_after_loss
        async with slots.slot():
            active += 1
            if lost.is_set():
                most_after_loss = max(most_after_loss, active)
            await asyncio.sleep(seconds)
            active -= 1

    tasks = [asyncio.create_task(shot(0.02)) for _ in range(24)]
    await asyncio.sleep(0.03)
    source.capacities = [running(2)]
    await slots.refresh()
    lost.set()
    await asyncio.gather(*tasks)
    assert most_after_loss <= 4  # those running at the loss, then never above 2 new ones


async def test_unreadable_capacity_falls_back_to_the_setting() -> None:
    slots = ShotSlots(FakeSource(), cap=3)
    slots.source.capacities = None  # type: ignore[union-attr]
    assert await slots.refresh() == 3
    assert await ShotSlots(None).refresh() == FALLBACK_SHOTS


async def test_shots_take_slots_in_the_order_they_ask() -> None:
    slots = ShotSlots(FakeSource(running(1)), poll_s=0.01)
    order: list[int] = []

    async def shot(i: int) -> None:
        async with slots.slot():
            order.append(i)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(shot(i) for i in range(8)))
    assert order == list(range(8))


async def test_a_cancelled_waiter_hands_its_slot_on() -> None:
    slots = ShotSlots(FakeSource(running(1)), poll_s=0.01)
    await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    slots.release()
    assert slots.in_flight == 0
    await asyncio.wait_for(slots.acquire(), 1)
    assert slots.in_flight == 1


def test_the_setting_is_a_cap_only_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANTOKU_MAX_PARALLEL_SHOTS", raising=False)
    assert JobSettings().max_parallel_shots is None
    monkeypatch.setenv("KANTOKU_MAX_PARALLEL_SHOTS", "6")
    assert JobSettings().max_parallel_shots == 6


async def test_the_graph_renders_within_the_live_capacity_longest_first(tmp_path) -> None:  # noqa: ANN001
    from kantoku.planner.cache import RenderCache
    from kantoku.planner.context import JobContext
    from kantoku.planner.jobs import open_checkpointer
    from kantoku.planner.planning.brief import parse_brief
    from kantoku.planner.planning.plan import Plan, Shot
    from kantoku.planner.rights.ledger import SqliteLedger
    from kantoku.services._core.assets import AssetStore

    rng = random.Random(3)
    lengths = [rng.choice([1.0, 2.0, 3.0, 4.0]) for _ in range(12)]
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    plan = Plan(title="t", duration_s=sum(lengths), width_px=720, height_px=1280, fps=30,
                shots=[Shot(id=f"s{i + 1:03d}", start_s=s, end_s=s + n)
                       for i, (s, n) in enumerate(zip(starts, lengths, strict=True))])
    source = FakeSource(running(3))
    active, most, started = 0, 0, []

    async def render(ctx: Any, shot: Shot, plan: Plan, brief: Any) -> dict[str, Any]:
        nonlocal active, most
        active += 1
        most = max(most, active)
        started.append(shot.duration_s)
        await asyncio.sleep(0.01)
        active -= 1
        return {"shot_id": shot.id, "notes": []}

    store = AssetStore(tmp_path / "assets")
    ctx = JobContext(job_id="cap", out_dir=tmp_path / "out", client=None,  # type: ignore
                     store=store, cache=RenderCache(tmp_path / "cache", store),
                     ledger=SqliteLedger(tmp_path / "ledger.sqlite"), renderer=render,
                     slots=ShotSlots(source, poll_s=0.01))
    async with open_checkpointer(str(tmp_path / "jobs.sqlite")) as saver:
        graph = build_graph(until="collect").compile(checkpointer=saver)
        config: dict[str, Any] = {"configurable": {"thread_id": "cap"}}
        state = {"job_id": "cap", "plan": plan.model_dump(mode="json"), "policy": {},
                 "auto_approve": True, "shots": {}, "notes": [],
                 "brief": parse_brief({"title": "t", "duration_s": plan.duration_s}
                                      ).model_dump(mode="json")}
        await graph.aupdate_state(config, state, as_node="policy_gate")
        async for _ in graph.astream(None, config, context=ctx):
            pass
        values = (await graph.aget_state(config)).values
    assert len(values["shots"]) == 12
    assert most == 3
    assert started == sorted(lengths, reverse=True)


def test_a_job_without_ray_does_not_import_it() -> None:
    import subprocess
    import sys

    code = ("import sys; from kantoku.planner.capacity import default_source; "
            "assert default_source() is None; assert 'ray' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_a_deployment_survives_the_wire() -> None:
    for capacity in (running(2, per_replica=3),
                     running(1, "image", max_replicas=4, target_ongoing_requests=1.5)):
        assert DeploymentCapacity.from_proto(capacity.to_proto()) == capacity


class ReportingClient:
    """What the services answer to GetCapacity, set by the test."""

    def __init__(self) -> None:
        self.replies: dict[str, common_pb2.GetCapacityResponse] = {}
        self.error: KantokuError | None = None
        self.calls = 0

    async def get_capacity(self, application: str) -> common_pb2.GetCapacityResponse:
        self.calls += 1
        if self.error:
            raise self.error
        return self.replies[application]


def hosted(*capacities: DeploymentCapacity) -> common_pb2.GetCapacityResponse:
    return common_pb2.GetCapacityResponse(hosted=True,
                                          deployments=[c.to_proto() for c in capacities])


async def test_a_job_outside_ray_follows_what_the_services_report() -> None:
    client = ReportingClient()
    client.replies = {"image": hosted(running(2, "image")), "video": hosted(running(3))}
    events: list[dict[str, Any]] = []
    slots = ShotSlots(ServiceCapacity(client),  # type: ignore[arg-type]
                      on_limit=lambda n, found: events.append(capacity_event(n, found)))
    assert await slots.refresh() == 5
    client.error = unavailable("the ingress restarts")
    assert await slots.refresh() == 5  # a failed poll keeps the last report
    client.error = None
    client.replies["video"] = hosted(running(1))  # a node with two video replicas was lost
    assert await slots.refresh() == 3
    assert [e["shots_in_flight"] for e in events] == [5, 3]  # the first limit, then changes
    assert [(d["application"], d["running"]) for d in events[-1]["deployments"]] == [
        ("image", 2), ("video", 1)]


@pytest.mark.parametrize("answer", ["standalone", "unimplemented"])
async def test_a_standalone_or_older_server_leaves_it_to_the_setting(answer: str) -> None:
    client = ReportingClient()
    if answer == "standalone":
        standalone = common_pb2.GetCapacityResponse(hosted=False)
        client.replies = {"image": standalone, "video": standalone}
    else:
        client.error = KantokuError("Method not found!", "UNIMPLEMENTED")
    slots = ShotSlots(ServiceCapacity(client), cap=6)  # type: ignore[arg-type]
    assert await slots.refresh() == 6
    calls = client.calls
    assert await slots.refresh() == 6 and client.calls == calls  # not asked again



def test_the_cli_says_how_many_shots_render_at_once_and_why() -> None:
    from kantoku.agents.mv.progress import capacity_line

    event = capacity_event(5, [running(2, "image"),
                               running(1, per_replica=3, max_replicas=4,
                                       target_ongoing_requests=1.0)])
    assert capacity_line(event) == ("shots in flight: 5 (image: 2 replicas x 1 request, "
                                    "video: 1 replica (up to 4) x 3 requests)")
    capped = capacity_event(4, [running(2, "image"), running(3)], cap=4)
    assert capacity_line(capped) == ("shots in flight: 4 (image: 2 replicas x 1 request, "
                                     "video: 3 replicas x 1 request, capped by "
                                     "KANTOKU_MAX_PARALLEL_SHOTS)")
    assert not capacity_event(4, [running(2, "image"), running(2)], cap=4)["capped"]
