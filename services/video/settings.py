"""Video service settings (env prefix KANTOKU_VIDEO_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kantoku.services._core.registry import ModelId
from kantoku.services._core.settings import DeploymentSettings


class VideoSettings(DeploymentSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_VIDEO_", extra="ignore")

    #: Registry ids this replica serves; animatic always, plus any registered diffusers models.
    models: list[ModelId] = Field(default=["animatic-v1"])
    dtype: str = Field(default="float32", description="float32, bfloat16 or float16")
