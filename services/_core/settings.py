"""Settings shared by every service, from the environment (prefix KANTOKU_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    """Where kantoku keeps its state and how its servers behave."""

    model_config = SettingsConfigDict(env_prefix="KANTOKU_", extra="ignore")

    home: Path = Field(default=Path("~/.kantoku"), description="assets, registry additions, jobs")
    auth_token: SecretStr | None = Field(default=None, description="bearer token servers require")
    max_message_mb: int = Field(default=16, ge=1, le=512)
    grace_period_s: float = Field(default=5.0, ge=0)

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def assets_dir(self) -> Path:
        return self.home_dir / "assets"

    @property
    def token(self) -> str | None:
        value = self.auth_token.get_secret_value() if self.auth_token else ""
        return value or None


class AutoscalingSettings(BaseModel):
    """Serve's autoscaling of one deployment's replicas (its `autoscaling_config`), as JSON in
    `KANTOKU_<SERVICE>_AUTOSCALING`, e.g. '{"min_replicas": 1, "max_replicas": 3}'."""

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    #: Requests in flight per replica that Serve scales towards.
    target_ongoing_requests: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _check_bounds(self) -> AutoscalingSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"autoscaling: max_replicas ({self.max_replicas}) is below "
                             f"min_replicas ({self.min_replicas})")
        return self


class DeploymentSettings(BaseSettings):
    """How one service is hosted on Ray Serve; each service subclasses with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore")

    num_replicas: int = Field(default=1, ge=1)
    #: When set, Serve scales the replicas between its bounds and `num_replicas` is not used.
    autoscaling: AutoscalingSettings | None = None
    num_gpus: float = Field(default=0.0, ge=0)
    # A fraction, so several services fit on a 2-core machine (a default actor needs 1 CPU).
    num_cpus: float = Field(default=0.25, gt=0)
    #: Calls a replica takes at once; unset: 1 on a GPU (one render at a time, so Serve's router
    #: never queues a call behind a busy replica while another is idle), else 8.
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    #: Ray's accelerator type a replica needs ("H100", "L4", ...: the `accelerator_type:<kind>`
    #: resource Ray declares for each node's GPUs); None runs on any GPU.
    accelerator_type: str | None = Field(default=None, min_length=1)
    #: Custom Ray resources a replica needs, as JSON (`{"gpu-pool-a": 1}`); nodes declare them
    #: with `ray start --resources`.
    resources: dict[str, float] = Field(default_factory=dict)
    #: "auto" picks cuda when torch sees a GPU (Ray sets CUDA_VISIBLE_DEVICES per replica).
    device: str = Field(default="auto")

    def ongoing_limit(self) -> int:
        """`max_ongoing_requests`, or its default for this deployment's GPUs."""
        if self.max_ongoing_requests is not None:
            return self.max_ongoing_requests
        return 1 if self.num_gpus > 0 else 8

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"


def core_settings() -> CoreSettings:
    """Current settings; cheap to build, so read fresh and tests can change the environment."""
    return CoreSettings()
