"""A job's shots in flight follow the image deployment's live replicas on a real Ray Serve:
two replicas, then a third added while shots wait. Read as a job outside the cluster reads it
(GetCapacity through Serve's gRPC ingress), and as one inside reads it (Serve's controller)."""

from __future__ import annotations

import asyncio
import logging

import pytest

# A Ray cluster of its own (20 to 30 s): `make test-slow`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_slots_follow_replicas_added_while_shots_wait(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray import serve

    from kantoku.planner.capacity import (
        ServeCapacity,
        ServiceCapacity,
        ShotSlots,
        default_source,
    )
    from kantoku.services import hosting
    from kantoku.services._core.client import ServiceClient
    from kantoku.services._core.server import free_port
    from kantoku.services.catalog import get_service

    monkeypatch.setenv("KANTOKU_IMAGE_NUM_GPUS", "1")
    monkeypatch.setenv("KANTOKU_IMAGE_NUM_REPLICAS", "2")
    monkeypatch.setenv("KANTOKU_IMAGE_DEVICE", "cpu")  # logical GPUs only on this machine
    monkeypatch.delenv("KANTOKU_IMAGE_MAX_ONGOING_REQUESTS", raising=False)
    assert default_source() is None  # no Ray here yet: the setting decides
    ray.init(address="local", num_cpus=2, num_gpus=3, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    grpc_port = free_port()
    client = ServiceClient(f"127.0.0.1:{grpc_port}", attempts=1)
    try:
        hosting.start_serve(grpc_port, free_port(), ["image"])
        hosting.deploy(["image"])
        assert isinstance(default_source(client), ServeCapacity)
        (image,) = await ServeCapacity(["image", "video"]).read() or []
        assert (image.running, image.max_ongoing_requests, image.slots) == (2, 1, 2)
        reported = await client.get_capacity("image")
        assert reported.hosted
        source = ServiceCapacity(client, ["image"])
        assert await source.read() == [image]  # the replica reads the same controller

        slots = ShotSlots(source, poll_s=0.2)
        release = asyncio.Event()

        async def shot() -> None:
            async with slots.slot():
                await release.wait()

        shots = [asyncio.create_task(shot()) for _ in range(5)]
        await asyncio.sleep(0.5)
        assert slots.in_flight == 2
        monkeypatch.setenv("KANTOKU_IMAGE_NUM_REPLICAS", "3")
        await asyncio.to_thread(serve.run, hosting.build_application(get_service("image")),
                                name="image", route_prefix="/image")
        for _ in range(100):
            if slots.in_flight == 3:
                break
            await asyncio.sleep(0.1)
        assert slots.in_flight == 3 and slots.limit == 3
        release.set()
        await asyncio.gather(*shots)
    finally:
        await client.close()
        serve.shutdown()
        ray.shutdown()
