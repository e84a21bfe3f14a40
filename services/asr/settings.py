"""ASR service settings (env prefix KANTOKU_ASR_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kantoku.services._core.settings import DeploymentSettings


class AsrSettings(DeploymentSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_ASR_", extra="ignore")

    #: Threads CTranslate2 uses per transcription; the avatar's turns are short, so a few do.
    cpu_threads: int = Field(default=2, ge=1, le=64)
    #: Beams in the decoder search; 1 (greedy) is fastest, a few more help noisy audio.
    beam_size: int = Field(default=2, ge=1, le=10)
