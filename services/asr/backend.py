"""The ASR backend contract: mono 16 kHz samples in, a transcript with word timings out."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from kantoku.services._core.registry import ModelEntry
from kantoku.v1 import common_pb2

#: The rate every backend takes; the servicer resamples to it.
SAMPLE_RATE_HZ = 16000


@dataclass(frozen=True)
class Word:
    """A recognised word with its span, in seconds from the start of the audio."""

    text: str
    start_s: float
    end_s: float


@dataclass
class Recognition:
    """What a backend heard in one utterance."""

    text: str
    language_code: str
    language_probability: float
    words: list[Word] = field(default_factory=list)


class AsrBackend(abc.ABC):
    """One recognizer. Loads its weights once; `recognize` is blocking CPU work."""

    entry: ModelEntry
    #: Device it runs on ("cpu", "cuda:0").
    device: str = "cpu"

    @abc.abstractmethod
    def languages(self) -> frozenset[str]:
        """The language codes the model can be told to expect."""

    @abc.abstractmethod
    def weights(self) -> list[common_pb2.WeightsFile]:
        """The weights files actually loaded, with their sha256."""

    @abc.abstractmethod
    def recognize(self, samples: np.ndarray, language_code: str,
                  word_timings: bool) -> Recognition:
        """Transcribe float32 mono samples at SAMPLE_RATE_HZ; empty language_code detects it."""
