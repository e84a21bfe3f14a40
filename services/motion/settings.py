"""Motion service settings (env prefix KANTOKU_MOTION_)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from kantoku.services._core.settings import DeploymentSettings


class MotionSettings(DeploymentSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_MOTION_", extra="ignore")
