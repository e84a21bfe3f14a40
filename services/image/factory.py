"""Builds the image servicer with the models named in settings."""

from __future__ import annotations

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.image.backend import ImageBackend
from kantoku.services.image.servicer import ImageServicer
from kantoku.services.image.settings import ImageSettings


def build_backend(model_id: str, registry: ModelRegistry, settings: ImageSettings
                  ) -> ImageBackend:
    entry = registry.get(model_id, kind="image")
    if entry.family == "previz":
        from kantoku.services.image.backends.previz import PrevizBackend

        return PrevizBackend(registry)
    from kantoku.services.image.backends.diffusers_dit import DiffusersImageBackend

    ip_adapter = registry.get(entry.ip_adapter, kind="ip_adapter") if entry.ip_adapter else None
    return DiffusersImageBackend(entry, WeightsHasher(), settings.resolved_device(), settings.dtype,
                                 ip_adapter)


def build_servicer() -> ImageServicer:
    settings, registry = ImageSettings(), ModelRegistry()
    backends = {m: build_backend(m, registry, settings) for m in settings.models}
    return ImageServicer(backends, AssetStore(core_settings().assets_dir), registry,
                         default_model_id=settings.models[0])
