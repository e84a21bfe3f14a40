"""What each replica asks Ray for, from KANTOKU_<SERVICE>_* settings: GPUs, the GPU kind and
custom resources, in a form Ray Serve's own schema accepts; and where a step says it ran."""

from __future__ import annotations

import pytest
from pydantic_settings import SettingsError
from ray.serve.schema import RayActorOptionsSchema

from kantoku.services.catalog import get_service
from kantoku.services.hosting import actor_options


def test_a_gpu_kind_and_custom_resources_reach_the_replicas(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_IMAGE_NUM_GPUS", "0.5")
    monkeypatch.setenv("KANTOKU_IMAGE_ACCELERATOR_TYPE", "L4")
    monkeypatch.setenv("KANTOKU_IMAGE_RESOURCES", '{"gpu-pool-a": 1}')
    options = actor_options(get_service("image").deployment_settings())
    assert (options["num_gpus"], options["accelerator_type"], options["resources"]) == (
        0.5, "L4", {"gpu-pool-a": 1.0})
    RayActorOptionsSchema.model_validate(options)


def test_by_default_a_replica_runs_on_any_node(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACCELERATOR_TYPE", "RESOURCES"):
        monkeypatch.delenv(f"KANTOKU_VIDEO_{name}", raising=False)
    options = actor_options(get_service("video").deployment_settings())
    assert "accelerator_type" not in options and "resources" not in options
    RayActorOptionsSchema.model_validate(options)


def test_a_malformed_resource_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_IMAGE_RESOURCES", "gpu-pool-a")
    with pytest.raises(SettingsError, match="resources"):
        get_service("image").deployment_settings()


def test_a_standalone_step_names_its_host_and_no_ray_node() -> None:
    from kantoku.services._core.provenance import worker_info

    info = worker_info("cpu")
    assert info.hosting == "standalone" and info.host
    assert (info.node_ip, info.node_id) == ("", "")


def test_joining_a_cluster_takes_the_gpus_its_nodes_declared() -> None:
    from kantoku.services import local_stack
    from kantoku.services._core.errors import KantokuError

    with pytest.raises(KantokuError, match="--gpus") as raised:
        local_stack.up(9000, 2, ["tts"], lambda step: None, llm=False,
                       address="10.0.0.1:6379")
    assert raised.value.reason == "GPUS_WITH_ADDRESS"
