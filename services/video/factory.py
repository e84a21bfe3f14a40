"""Builds the video servicer with the models named in settings."""

from __future__ import annotations

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.video.backend import VideoBackend
from kantoku.services.video.servicer import VideoServicer
from kantoku.services.video.settings import VideoSettings


def build_backend(model_id: str, registry: ModelRegistry, settings: VideoSettings
                  ) -> VideoBackend:
    entry = registry.get(model_id, kind="video")
    if entry.family == "animatic":
        from kantoku.services.video.backends.animatic import AnimaticBackend

        return AnimaticBackend(registry)
    from kantoku.services.video.backends.diffusers_video import DiffusersVideoBackend

    return DiffusersVideoBackend(entry, WeightsHasher(), settings.resolved_device(), settings.dtype)


def build_servicer() -> VideoServicer:
    settings, registry = VideoSettings(), ModelRegistry()
    backends = {m: build_backend(m, registry, settings) for m in settings.models}
    return VideoServicer(backends, AssetStore(core_settings().assets_dir),
                         default_model_id=settings.models[0])
