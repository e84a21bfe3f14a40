"""The TTS backend contract: text in, sentence segments with audio and honest timings out."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from kantoku.services._core.registry import ModelEntry
from kantoku.v1 import common_pb2


@dataclass(frozen=True)
class Timed:
    """A phoneme or word with its span, in seconds from the start of its segment."""

    label: str
    start_s: float
    end_s: float


@dataclass
class SpeechSegment:
    """One sentence of speech: int16 mono samples and what is said when."""

    text: str
    pcm: np.ndarray
    phonemes: list[Timed] = field(default_factory=list)
    words: list[Timed] = field(default_factory=list)


@dataclass(frozen=True)
class Voice:
    voice_id: str
    language_codes: tuple[str, ...]
    sample_rate_hz: int
    entry: ModelEntry


class TtsBackend(abc.ABC):
    """One engine (Piper, Kokoro). Loads its weights once; `synthesize` is blocking CPU work."""

    #: Device it runs on ("cpu", "cuda:0").
    device: str = "cpu"

    @abc.abstractmethod
    def voices(self) -> list[Voice]:
        """Voices this backend speaks with."""

    @abc.abstractmethod
    def weights(self, voice_id: str) -> list[common_pb2.WeightsFile]:
        """The weights files actually loaded for `voice_id`, with their sha256."""

    @abc.abstractmethod
    def synthesize(self, text: str, voice_id: str,
                   speaking_rate: float) -> Iterator[SpeechSegment]:
        """Yield one segment per sentence, in order."""
