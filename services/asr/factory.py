"""Builds the ASR servicer with the recognizer named in settings."""

from __future__ import annotations

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.asr.backend import AsrBackend
from kantoku.services.asr.servicer import AsrServicer
from kantoku.services.asr.settings import AsrSettings


def build_backend(settings: AsrSettings | None = None) -> AsrBackend:
    from kantoku.services.asr.backends.faster_whisper import FasterWhisperBackend

    settings = settings or AsrSettings()
    return FasterWhisperBackend(ModelRegistry(), WeightsHasher(), cpu_threads=settings.cpu_threads,
                                beam_size=settings.beam_size)


def build_servicer() -> AsrServicer:
    return AsrServicer(build_backend(), AssetStore(core_settings().assets_dir))
