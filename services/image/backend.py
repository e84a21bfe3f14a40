"""The image backend contract: a structured shot and a prompt in, a PNG (and layers) out."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kantoku.services._core.generation import check_size_multiple
from kantoku.services._core.registry import ModelEntry
from kantoku.v1 import common_pb2

ProgressFn = Callable[[str, int, int], None]  # stage, step, total_steps


@dataclass(frozen=True)
class Character:
    name: str
    description: str = ""


@dataclass(frozen=True)
class Shot:
    """Lower-case names: shot_size 'wide', camera_angle 'low', time_of_day 'dusk', ..."""

    shot_size: str = "medium"
    camera_angle: str = "eye_level"
    characters: tuple[Character, ...] = ()
    location: str = ""
    time_of_day: str = "day"
    mood: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Reference:
    path: Path
    character_name: str
    weight: float


@dataclass(frozen=True)
class Adapter:
    entry: ModelEntry
    path: Path
    weight: float


@dataclass(frozen=True)
class ImageJob:
    prompt: str
    width_px: int
    height_px: int
    seed: int
    shot: Shot = Shot()
    negative_prompt: str = ""
    steps: int = 0
    guidance_scale: float = 0.0
    references: tuple[Reference, ...] = ()
    adapters: tuple[Adapter, ...] = ()


@dataclass
class RenderedImage:
    png: bytes
    #: (name, RGBA PNG, depth 0 near .. 1 far), back to front.
    layers: list[tuple[str, bytes, float]] = field(default_factory=list)
    #: What actually ran (steps, guidance, scheduler, ...), for the provenance record.
    parameters: dict[str, Any] = field(default_factory=dict)


class ImageBackend(abc.ABC):
    """One model (or one renderer). Loads once; `generate` is blocking work."""

    entry: ModelEntry
    device: str = "cpu"
    #: Width and height must be multiples of this.
    size_multiple: int = 1
    supports_adapters: bool = False
    supports_references: bool = False
    #: Ends the refusal of reference images when `supports_references` is False (how, or why not).
    references_note: str = ""

    def check(self, job: ImageJob) -> None:
        """Refuse what this model cannot honour; never round silently."""
        check_size_multiple(self.entry.id, self.size_multiple, job.width_px, job.height_px)

    @abc.abstractmethod
    def weights(self) -> list[common_pb2.WeightsFile]:
        """Weights files actually loaded, with their sha256."""

    def reference_adapter(self) -> common_pb2.ModelCard | None:
        """The adapter that reads reference images, with the weights files actually loaded."""
        return None

    @abc.abstractmethod
    def generate(self, job: ImageJob, progress: ProgressFn) -> RenderedImage:
        """Render `job`; call `progress` as work advances."""
