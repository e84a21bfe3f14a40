"""Builds the TTS servicer with the backends named in settings."""

from __future__ import annotations

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import invalid
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.tts.backend import TtsBackend
from kantoku.services.tts.servicer import TtsServicer
from kantoku.services.tts.settings import TtsSettings


def build_backends(names: list[str]) -> list[TtsBackend]:
    registry, hasher = ModelRegistry(), WeightsHasher()
    backends: list[TtsBackend] = []
    for name in names:
        if name == "piper":
            from kantoku.services.tts.backends.piper import PiperBackend

            backends.append(PiperBackend(registry, hasher))
        elif name == "kokoro":
            from kantoku.services.tts.backends.kokoro_ja import KokoroJaBackend

            backends.append(KokoroJaBackend(registry, hasher))
        else:
            raise invalid(f"KANTOKU_TTS_BACKENDS: unknown backend {name!r}; use piper, kokoro",
                          reason="BACKEND_UNKNOWN")
    return backends


def build_servicer() -> TtsServicer:
    settings = TtsSettings()
    return TtsServicer(build_backends(settings.backends), AssetStore(core_settings().assets_dir))
