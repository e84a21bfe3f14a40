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
    #: Seconds of Whisper's encoder window for audio that fits it with a second to spare when
    #: word timings are not asked for; 0 always uses the full 30 s. The encoder's cost grows
    #: with the window (faster-whisper pads every input to 30 s), and 15 s hears the project's
    #: voices as well as 30 s in 35 to 50 % of the time. Longer audio, or word timings, take
    #: the full window.
    encoder_window_s: float = Field(default=15.0, ge=0.0, le=30.0)
