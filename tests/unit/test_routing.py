"""Serve spreads a job's calls by least load: one call per GPU replica, every replica looked at."""

from __future__ import annotations

import pytest

from kantoku.services.hosting import app_builder
from kantoku.services.routing import LeastLoadedRouter


def built(service: str) -> object:
    return app_builder({"service": service})._bound_deployment


def test_a_gpu_replica_takes_one_call_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_VIDEO_NUM_GPUS", "1")
    monkeypatch.delenv("KANTOKU_VIDEO_MAX_ONGOING_REQUESTS", raising=False)
    assert built("video").max_ongoing_requests == 1  # type: ignore[attr-defined]
    monkeypatch.setenv("KANTOKU_VIDEO_MAX_ONGOING_REQUESTS", "2")  # a batching backend
    assert built("video").max_ongoing_requests == 2  # type: ignore[attr-defined]


def test_a_cpu_replica_takes_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANTOKU_TTS_NUM_GPUS", raising=False)
    monkeypatch.delenv("KANTOKU_TTS_MAX_ONGOING_REQUESTS", raising=False)
    assert built("tts").max_ongoing_requests == 8  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", ["image", "video", "tts"])
def test_every_deployment_uses_the_least_loaded_router(service: str) -> None:
    config = built(service)._deployment_config.request_router_config  # type: ignore[attr-defined]
    assert config.request_router_class.endswith("routing.LeastLoadedRouter")


async def test_the_router_offers_every_replica() -> None:
    router = LeastLoadedRouter.__new__(LeastLoadedRouter)
    replicas = [object(), object(), object()]
    assert await router.choose_replicas(replicas) == [replicas]  # type: ignore[arg-type]
    assert await router.choose_replicas([]) == []
