import numpy as np
import pytest

from kantoku.services._core.registry import ModelRegistry
from kantoku.services.motion.backend import VISEMES, Gesture, Span, SpeechTimings
from kantoku.services.motion.backends.rules import RuleMotionBackend, viseme_for


@pytest.fixture(scope="module")
def backend() -> RuleMotionBackend:
    return RuleMotionBackend(ModelRegistry())


@pytest.mark.parametrize(("phoneme", "viseme"), [
    ("p", "PP"), ("m", "PP"), ("f", "FF"), ("θ", "TH"), ("t", "DD"), ("k", "kk"), ("ʃ", "CH"),
    ("s", "SS"), ("n", "nn"), ("ɹ", "RR"), ("ˈɑː", "aa"), ("ɛ", "E"), ("ɪ", "ih"), ("o", "oh"),
    ("ʊ", "ou"), ("ɯ", "ou"), ("ʨ", "CH"), ("kʲ", "kk"), (" ", "sil"), (".", "sil"), ("^", "sil"),
])
def test_phoneme_to_viseme(phoneme: str, viseme: str) -> None:
    assert VISEMES[viseme_for(phoneme)] == viseme


def _timings() -> SpeechTimings:
    phones = [Span("^", 0.0, 0.1), Span("h", 0.1, 0.15), Span("ə", 0.15, 0.2), Span("l", 0.2, 0.3),
              Span("ˈoʊ", 0.3, 0.6), Span(".", 0.6, 0.7), Span("$", 0.7, 1.0)]
    return SpeechTimings("en", phones, [Span("hello", 0.1, 0.6)], 1.0)


def test_viseme_track_covers_the_speech(backend: RuleMotionBackend) -> None:
    tracks = backend.animate_timings(_timings(), fps=30, seed=0)
    assert len(tracks.times_s) == 30
    assert tracks.weights.shape == (30, 15)
    np.testing.assert_allclose(tracks.weights.sum(axis=1), 1.0, rtol=1e-5)
    # mouth closed at the start, the vowel dominates in its middle
    assert VISEMES[int(np.argmax(tracks.weights[0]))] == "sil"
    assert VISEMES[int(np.argmax(tracks.weights[14]))] == "oh"


def test_gestures_nod_on_stressed_word_and_blink(backend: RuleMotionBackend) -> None:
    tracks = backend.animate_timings(_timings(), fps=30, seed=0)
    nods = [g for g in tracks.gestures if g.gesture == Gesture.HEAD_NOD]
    blinks = [g for g in tracks.gestures if g.gesture == Gesture.BLINK]
    assert [n.cue for n in nods] == ["hello"]
    assert blinks and all(b.end_s - b.start_s == pytest.approx(0.15) for b in blinks)


def test_blinks_depend_on_seed(backend: RuleMotionBackend) -> None:
    long = SpeechTimings("en", [Span("a", 0.0, 20.0)], [], 20.0)
    a = [g.start_s for g in backend.animate_timings(long, 10, seed=1).gestures]
    b = [g.start_s for g in backend.animate_timings(long, 10, seed=2).gestures]
    assert a != b
    assert a == [g.start_s for g in backend.animate_timings(long, 10, seed=1).gestures]
    assert 3 <= len(a) <= 9  # a blink every 2.5-5.5 s


def test_audio_mode_opens_the_mouth_when_loud(backend: RuleMotionBackend) -> None:
    rate = 16000
    t = np.arange(rate) / rate
    samples = np.where(t > 0.5, 0.5 * np.sin(2 * np.pi * 220 * t), 0.0).astype(np.float32)
    tracks = backend.animate_audio(samples, rate, fps=20, seed=0)
    aa = VISEMES.index("aa")
    assert tracks.weights[:9, aa].max() < 0.05
    assert tracks.weights[12:, aa].min() > 0.5
