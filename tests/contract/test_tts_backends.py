"""One conformance suite every TTS backend must pass."""

import numpy as np
import pytest

SAMPLES = {"en": "Hello world. The quick brown fox jumps over the lazy dog.",
           "ja": "こんにちは、世界。今日はいい天気ですね。"}


def _voices(backends):  # noqa: ANN001, ANN202
    return [(b, v) for b in backends for v in b.voices()]


@pytest.fixture(scope="module")
def takes(tts_backends):  # noqa: ANN001, ANN201
    out = []
    for backend, voice in _voices(tts_backends):
        language = voice.language_codes[0].split("-")[0]
        segments = list(backend.synthesize(SAMPLES[language], voice.voice_id, 1.0))
        out.append((backend, voice, segments))
    return out


def test_every_voice_is_registered_with_rights(tts_backends) -> None:  # noqa: ANN001
    for backend, voice in _voices(tts_backends):
        assert voice.entry.license and voice.entry.rights_holder
        weights = backend.weights(voice.voice_id)
        registered = {w.path: w.sha256 for w in voice.entry.weights}
        assert weights and all(registered[w.path] == w.sha256 for w in weights)


def test_one_segment_per_sentence_with_text(takes) -> None:  # noqa: ANN001
    for _, voice, segments in takes:
        assert len(segments) == 2, voice.voice_id
        assert all(s.text and len(s.pcm) > 0.3 * voice.sample_rate_hz for s in segments)


def test_timings_are_ordered_and_inside_the_audio(takes) -> None:  # noqa: ANN001
    for _, voice, segments in takes:
        for segment in segments:
            length = len(segment.pcm) / voice.sample_rate_hz
            starts = [p.start_s for p in segment.phonemes]
            assert starts == sorted(starts)
            assert all(0 <= p.start_s <= p.end_s <= length + 1e-6 for p in segment.phonemes)
            assert segment.words and all(w.start_s < w.end_s for w in segment.words)


def test_timings_come_from_the_model_not_an_even_spread(takes) -> None:  # noqa: ANN001
    for _, voice, segments in takes:
        durations = np.array([p.end_s - p.start_s for s in segments for p in s.phonemes])
        assert durations.std() > 0.2 * durations.mean(), voice.voice_id


def test_rate_changes_the_length(tts_backends) -> None:  # noqa: ANN001
    for backend, voice in _voices(tts_backends)[:2]:
        language = voice.language_codes[0].split("-")[0]
        text = SAMPLES[language].split("。")[0].split(".")[0]
        normal = sum(len(s.pcm) for s in backend.synthesize(text, voice.voice_id, 1.0))
        fast = sum(len(s.pcm) for s in backend.synthesize(text, voice.voice_id, 1.5))
        assert fast < 0.85 * normal
