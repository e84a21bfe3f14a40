"""The Serve configs of deploy/ (KubeRay's serveConfigV2 and compose's deploy/serve.yaml) parse
with Ray's schema, point at real code, and their settings reach the deployments Serve builds."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from kantoku.services.catalog import SERVICES

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "kuberay" / "rayservice.yaml"
COMPOSE_SERVE = ROOT / "deploy" / "serve.yaml"


def _resolve(dotted: str) -> object:
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def kuberay_serve_config() -> ServeDeploySchema:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))


def compose_serve_config() -> ServeDeploySchema:
    return ServeDeploySchema.model_validate(yaml.safe_load(COMPOSE_SERVE.read_text()))


def app_env(app: ServeApplicationSchema) -> dict[str, str]:
    return {k: str(v) for k, v in (app.runtime_env or {}).get("env_vars", {}).items()}


def built_deployment(app: ServeApplicationSchema, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The deployment `app`'s builder makes with the application's runtime_env in the
    environment, as Serve's build task has it."""
    for name, value in app_env(app).items():
        monkeypatch.setenv(name, value)
    module, _, attr = app.import_path.partition(":")
    built = getattr(importlib.import_module(module), attr)(app.args)
    return built._bound_deployment


@pytest.mark.parametrize("config", [kuberay_serve_config, compose_serve_config],
                         ids=["kuberay", "compose"])
def test_serve_config_is_valid_and_importable(config: Any) -> None:
    config = config()
    names = {a.name for a in config.applications}
    # Every service has an application; the studio runs on Serve only on KubeRay.
    assert names - {"studio"} == set(SERVICES)
    assert set(config.grpc_options.grpc_servicer_functions) == {
        s.servicer_function_path for s in SERVICES.values()}
    for function in config.grpc_options.grpc_servicer_functions:
        assert callable(_resolve(function))
    for app in config.applications:
        # The gRPC proxy ignores apps without a prefix; the studio's page sits at the root.
        assert app.route_prefix == ("/" if app.name == "studio" else f"/{app.name}")
        module, _, attr = app.import_path.partition(":")
        builder = getattr(importlib.import_module(module), attr)
        assert builder(app.args) is not None


def test_kuberay_settings_reach_the_built_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPUs and autoscaling are read where Serve builds the application: the runtime_env."""
    apps = {a.name: a for a in kuberay_serve_config().applications}
    for name in ("image", "video"):
        deployment = built_deployment(apps[name], monkeypatch)
        assert deployment.ray_actor_options["num_gpus"] == 1
        autoscaling = deployment._deployment_config.autoscaling_config
        assert autoscaling is not None
        assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 3)
    for name in ("tts", "asr", "motion"):
        deployment = built_deployment(apps[name], monkeypatch)
        assert deployment.ray_actor_options["num_gpus"] == 0


def test_the_settings_pass_to_the_replicas(monkeypatch: pytest.MonkeyPatch) -> None:
    """The build forwards KANTOKU_* to the replicas, wherever Ray places them."""
    app = {a.name: a for a in kuberay_serve_config().applications}["image"]
    deployment = built_deployment(app, monkeypatch)
    forwarded = deployment.ray_actor_options["runtime_env"]["env_vars"]
    assert forwarded["KANTOKU_IMAGE_NUM_GPUS"] == "1"
    assert "KANTOKU_IMAGE_AUTOSCALING" in forwarded


def test_an_autoscaling_setting_with_bounds_reversed_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from kantoku.services.image.settings import ImageSettings

    monkeypatch.setenv("KANTOKU_IMAGE_AUTOSCALING", '{"min_replicas": 3, "max_replicas": 1}')
    with pytest.raises(ValidationError, match="max_replicas"):
        ImageSettings()


def test_without_autoscaling_the_replica_count_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    from kantoku.services.hosting import app_builder

    monkeypatch.delenv("KANTOKU_TTS_AUTOSCALING", raising=False)
    monkeypatch.setenv("KANTOKU_TTS_NUM_REPLICAS", "2")
    deployment = app_builder({"service": "tts"})._bound_deployment
    assert deployment.num_replicas == 2
    assert deployment._deployment_config.autoscaling_config is None
