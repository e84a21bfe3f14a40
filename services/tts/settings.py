"""TTS service settings (env prefix KANTOKU_TTS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kantoku.services._core.settings import DeploymentSettings


class TtsSettings(DeploymentSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_TTS_", extra="ignore")

    backends: list[str] = Field(default=["piper", "kokoro"], description="engines to load")
