"""Each deployment asks Ray for the GPUs its backend needs: with two logical GPUs declared and
one GPU per image replica, two replicas land on different GPUs and nothing is left over."""

from __future__ import annotations

import logging
import os

import pytest

# A Ray cluster of its own: `make test-slow`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_one_replica_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray import serve

    from kantoku.services import hosting
    from kantoku.services.catalog import get_service

    monkeypatch.setenv("KANTOKU_IMAGE_NUM_GPUS", "1")
    monkeypatch.setenv("KANTOKU_IMAGE_NUM_REPLICAS", "2")
    monkeypatch.setenv("KANTOKU_IMAGE_DEVICE", "cpu")  # logical GPUs only on this machine
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": 0})
        serve.run(hosting.build_application(get_service("image")), name="image",
                  route_prefix="/image")
        handle = serve.get_deployment_handle("image-service", app_name="image")
        seen = {}
        for _ in range(40):
            where = handle.placement.remote().result()
            seen[where["pid"]] = tuple(where["gpu_ids"])
        assert len(seen) == 2, seen
        assert sorted(g for ids in seen.values() for g in ids) == ["0", "1"]
        assert ray.available_resources().get("GPU", 0) == 0
        assert os.getpid() not in seen
    finally:
        serve.shutdown()
        ray.shutdown()
