"""Rule-based motion: IPA phonemes -> Oculus visemes with coarticulation ramps; timed gestures.

Works for the phoneme sets of both TTS backends (espeak IPA from Piper, misaki's Japanese IPA
from Kokoro). Audio-only requests follow the loudness envelope instead (jaw open/close).
"""

from __future__ import annotations

import numpy as np

from kantoku.services._core.registry import ModelRegistry
from kantoku.services.motion.backend import (
    VISEMES,
    Gesture,
    GestureKey,
    MotionBackend,
    MotionTracks,
    Span,
    SpeechTimings,
)

MODEL_ID = "kantoku-visemes-v1"
RAMP_S = 0.04  # coarticulation: a mouth shape fades in and out over this much time
BLINK_S = 0.15
NOD_S = 0.45
MIN_NOD_GAP_S = 1.2

_GROUPS = {
    "PP": "pbmɱ",
    "FF": "fvɸβ",
    "TH": "θð",
    "DD": "tdɾʈɖ",
    "kk": "kgɡqɢxɣhɦçʔ",
    "CH": "ʃʒʧʤɕʑʨʥ",
    "SS": "szʦʣ",
    "nn": "nŋɲɴlɫʎ",
    "RR": "ɹrɻʁɚɝ",
    "aa": "aɑæʌɐä",
    "E": "eɛəɜ",
    "ih": "iɪyʏjɨ",
    "oh": "oɔɒøœ",
    "ou": "uʊwɯɰ",
}
_BY_CHAR = {ch: VISEMES.index(v) for v, chars in _GROUPS.items() for ch in chars}
_MARKS = set("ˈˌːˑʲʰʷ˞ꜜꜛ↓↑")


def viseme_for(phoneme: str) -> int:
    """Index into VISEMES for one phoneme label (the first letter that has a mouth shape)."""
    for ch in phoneme:
        if ch in _MARKS:
            continue
        if ch in _BY_CHAR:
            return _BY_CHAR[ch]
    return 0  # silence, pauses, punctuation


class RuleMotionBackend(MotionBackend):
    def __init__(self, registry: ModelRegistry) -> None:
        self.entry = registry.get(MODEL_ID, kind="motion")

    def animate_timings(self, timings: SpeechTimings, fps: float, seed: int) -> MotionTracks:
        duration = max(timings.duration_s, max((p.end_s for p in timings.phonemes), default=0.0))
        times = _frame_times(duration, fps)
        weights = np.zeros((len(times), len(VISEMES)), np.float32)
        for phone in timings.phonemes:
            index = viseme_for(phone.label)
            if index == 0 or phone.end_s <= phone.start_s:
                continue
            ramp = min(RAMP_S, (phone.end_s - phone.start_s) / 2)
            rise = (times - (phone.start_s - ramp)) / (2 * ramp)
            fall = ((phone.end_s + ramp) - times) / (2 * ramp)
            weights[:, index] += np.clip(np.minimum(rise, fall), 0.0, 1.0)
        weights = _normalize(weights)
        gestures = _blinks(duration, seed, _sentence_ends(timings.phonemes))
        gestures += _nods(_stressed_words(timings))
        return MotionTracks(fps, times, weights, sorted(gestures, key=lambda g: g.start_s))

    def animate_audio(self, samples: np.ndarray, sample_rate_hz: int, fps: float,
                      seed: int) -> MotionTracks:
        duration = len(samples) / sample_rate_hz
        times = _frame_times(duration, fps)
        hop = sample_rate_hz / fps
        rms = np.array([_rms(samples[int(i * hop): int((i + 1) * hop)]) for i in range(len(times))],
                       np.float32)
        peak = float(np.percentile(rms, 95)) if len(rms) else 0.0
        openness = np.clip(rms / peak, 0.0, 1.0) if peak > 1e-4 else np.zeros_like(rms)
        weights = np.zeros((len(times), len(VISEMES)), np.float32)
        weights[:, VISEMES.index("aa")] = openness
        weights = _normalize(weights)
        onsets = [Span("onset", float(times[i]), float(times[i]) + NOD_S)
                  for i in range(1, len(openness))
                  if openness[i] > 0.6 and openness[max(0, i - int(fps // 3)):i].max() < 0.1]
        gestures = _blinks(duration, seed, []) + _nods(onsets)
        return MotionTracks(fps, times, weights, sorted(gestures, key=lambda g: g.start_s))


def _rms(window: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(window)))) if len(window) else 0.0


def _frame_times(duration_s: float, fps: float) -> np.ndarray:
    frames = max(1, int(np.ceil(duration_s * fps - 1e-9)))
    return np.arange(frames, dtype=np.float64) / fps


def _normalize(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=1)
    silence = np.clip(1.0 - total, 0.0, 1.0)
    weights[:, 0] += silence
    return weights / weights.sum(axis=1, keepdims=True)


def _sentence_ends(phonemes: list[Span]) -> list[float]:
    return [p.start_s for p in phonemes if p.label in {".", "?", "!", "。", "？", "！"}]


def _blinks(duration_s: float, seed: int, sentence_ends: list[float]) -> list[GestureKey]:
    """Idle blinks every 2.5-5.5 s (seeded), plus one at each sentence end."""
    rng = np.random.default_rng(seed)
    cues = [(t, "sentence end") for t in sentence_ends]
    t = float(rng.uniform(0.5, 2.0))
    while t < duration_s:
        cues.append((t, "idle"))
        t += float(rng.uniform(2.5, 5.5))
    blinks: list[GestureKey] = []
    for start, cue in sorted(cues):
        if start >= duration_s or (blinks and start < blinks[-1].end_s + 0.5):
            continue
        blinks.append(GestureKey(Gesture.BLINK, start, start + BLINK_S, 1.0, cue))
    return blinks


def _stressed_words(timings: SpeechTimings) -> list[Span]:
    """Words carrying primary stress (espeak 'ˈ' or a pitch-accent fall 'ꜜ'), longest first."""
    stressed = []
    for word in timings.words:
        marks = [p for p in timings.phonemes
                 if word.start_s <= p.start_s < word.end_s and ("ˈ" in p.label or "ꜜ" in p.label)]
        if marks and word.end_s - word.start_s >= 0.2:
            stressed.append(word)
    return stressed


def _nods(candidates: list[Span]) -> list[GestureKey]:
    """A nod on the strongest cues, at least MIN_NOD_GAP_S apart."""
    nods: list[GestureKey] = []
    for span in sorted(candidates, key=lambda s: s.start_s - s.end_s):  # longest first
        if all(abs(span.start_s - n.start_s) >= MIN_NOD_GAP_S for n in nods):
            length = span.end_s - span.start_s
            nods.append(GestureKey(Gesture.HEAD_NOD, span.start_s, span.start_s + NOD_S,
                                   float(min(1.0, 0.4 + length)), span.label))
    return nods
