"""The motion backend contract: speech timings (or loudness) in, viseme and gesture tracks out."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

import numpy as np

from kantoku.services._core.registry import ModelEntry

# Oculus/Meta 15-viseme set, in wire order.
VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh",
           "ou")


@dataclass(frozen=True)
class Span:
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SpeechTimings:
    language_code: str
    phonemes: list[Span]
    words: list[Span]
    duration_s: float


class Gesture(enum.Enum):
    BLINK = "blink"
    HEAD_NOD = "head_nod"


@dataclass(frozen=True)
class GestureKey:
    gesture: Gesture
    start_s: float
    end_s: float
    intensity: float
    cue: str


@dataclass
class MotionTracks:
    fps: float
    times_s: np.ndarray  # (frames,)
    weights: np.ndarray  # (frames, 15), rows sum to 1
    gestures: list[GestureKey] = field(default_factory=list)


class MotionBackend(abc.ABC):
    entry: ModelEntry
    device: str = "cpu"

    @abc.abstractmethod
    def animate_timings(self, timings: SpeechTimings, fps: float, seed: int) -> MotionTracks:
        """Visemes and gestures from phoneme and word timings."""

    @abc.abstractmethod
    def animate_audio(self, samples: np.ndarray, sample_rate_hz: int, fps: float,
                      seed: int) -> MotionTracks:
        """Visemes and gestures from the audio alone (mono float samples)."""
