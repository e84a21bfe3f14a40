"""The KubeRay manifest's Serve config parses with Ray's schema and points at real code."""

import importlib
from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from kantoku.services.catalog import SERVICES

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kuberay" / "rayservice.yaml"


def _resolve(dotted: str) -> object:
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_serve_config_is_valid_and_importable() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    assert {a.name for a in config.applications} == set(SERVICES) | {"studio"}
    for function in config.grpc_options.grpc_servicer_functions:
        assert callable(_resolve(function))
    for app in config.applications:
        # The gRPC proxy ignores apps without a prefix; the studio's page sits at the root.
        assert app.route_prefix == ("/" if app.name == "studio" else f"/{app.name}")
        module, _, attr = app.import_path.partition(":")
        builder = getattr(importlib.import_module(module), attr)
        assert builder(app.args) is not None
