"""The video backend contract: a keyframe (and its layers) or a prompt in, an H.264 MP4 out."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kantoku.services._core.errors import invalid
from kantoku.services._core.generation import check_size_multiple
from kantoku.services._core.registry import ModelEntry
from kantoku.v1 import common_pb2

ProgressFn = Callable[[str, int, int], None]  # stage, step, total_steps


@dataclass(frozen=True)
class Layer:
    name: str
    path: Path
    depth: float  # 0 near .. 1 far


@dataclass(frozen=True)
class VideoJob:
    keyframe: Path | None
    width_px: int
    height_px: int
    duration_s: float
    fps: float
    camera_move: str = "static"
    layers: tuple[Layer, ...] = ()
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 0
    guidance_scale: float = 0.0

    @property
    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)


@dataclass
class RenderedVideo:
    mp4: bytes
    frame_count: int
    fps: float
    parameters: dict[str, Any] = field(default_factory=dict)


class VideoBackend(abc.ABC):
    entry: ModelEntry
    device: str = "cpu"
    #: Frames per second used when a request gives 0.
    default_fps: float = 30.0
    size_multiple: int = 2
    needs_keyframe: bool = False

    def check(self, job: VideoJob) -> None:
        """Refuse what this model cannot honour (size multiples, frame counts); never round."""
        check_size_multiple(self.entry.id, self.size_multiple, job.width_px, job.height_px)
        if self.needs_keyframe and job.keyframe is None:
            raise invalid(f"keyframe: {self.entry.id} animates a still; pass a keyframe AssetRef",
                          reason="KEYFRAME_REQUIRED")

    @abc.abstractmethod
    def weights(self) -> list[common_pb2.WeightsFile]:
        """Weights files actually loaded, with their sha256."""

    @abc.abstractmethod
    def generate(self, job: VideoJob, progress: ProgressFn) -> RenderedVideo:
        """Render `job` into an MP4; call `progress` as frames are made."""
