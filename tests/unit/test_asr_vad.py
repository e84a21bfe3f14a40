"""StreamingVad on the project's own speech padded with silence, fed the way a mic feeds it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from kantoku.services.asr.vad import StreamingVad, VadEvent

LEAD_S, TAIL_S = 1.0, 1.5


@pytest.fixture(scope="module")
def spoken(tts_backends) -> tuple[np.ndarray, int, float, float]:  # noqa: ANN001
    """Piper's English at 22.05 kHz with silence around it, and where the speech starts and
    ends (ms, from the first sample over -50 dBFS to the last)."""
    piper = next(b for b in tts_backends if "en_US-joe-medium" in
                 {v.voice_id for v in b.voices()})
    pcm = np.concatenate([s.pcm for s in piper.synthesize(
        "Could you tell me the way to the station, please?", "en_US-joe-medium", 1.0)])
    rate = piper.voices()[0].sample_rate_hz
    audio = np.concatenate([np.zeros(int(LEAD_S * rate)), pcm,
                            np.zeros(int(TAIL_S * rate))]).astype("<i2")
    loud = np.nonzero(np.abs(audio) > 100)[0]
    return audio, rate, 1000 * loud[0] / rate, 1000 * loud[-1] / rate


def _run(vad: StreamingVad, audio: bytes, sizes: list[int]) -> list[VadEvent]:
    events, position = [], 0
    for size in sizes:
        events += vad.feed(audio[position:position + size])
        position += size
    assert position >= len(audio)
    return events


def _frames(total: int, size: int) -> list[int]:
    return [size] * (total // size + 1)


def test_one_turn_is_found_around_the_speech(spoken) -> None:  # noqa: ANN001
    audio, rate, start_ms, end_ms = spoken
    vad = StreamingVad(rate)
    data = audio.tobytes()
    events = _run(vad, data, _frames(len(data), 2 * rate // 50))  # 20 ms frames
    assert [e.kind for e in events] == ["speech_started", "speech_ended"]
    started, ended = events
    assert abs(started.at_ms - start_ms) < 150
    assert started.detected_ms - started.at_ms <= 200  # heard within a few windows
    assert end_ms - 150 < ended.at_ms < end_ms + 300
    assert ended.detected_ms >= ended.at_ms + vad.end_of_turn_ms
    assert not vad.speaking
    # the utterance holds the speech, with some audio before and after it
    utterance = np.frombuffer(vad.utterance(), dtype="<i2")
    speech_samples = (end_ms - start_ms) / 1000 * rate
    assert speech_samples < len(utterance) < speech_samples + 0.8 * rate
    assert np.abs(utterance[: int(0.05 * rate)]).max() < 100  # it starts in the pre-roll


def test_frames_of_any_size_give_the_same_events(spoken) -> None:  # noqa: ANN001
    audio, rate, _, _ = spoken
    data = audio.tobytes()
    reference = _run(StreamingVad(rate), data, [len(data)])
    sizes = [int(n) for n in np.random.default_rng(7).integers(1, 9000, size=len(data))]
    cut = np.cumsum(sizes)
    sizes = sizes[: int(np.searchsorted(cut, len(data))) + 1]
    odd = StreamingVad(rate)
    assert _run(odd, data, sizes) == reference  # odd byte counts included
    whole = StreamingVad(rate)
    _run(whole, data, [len(data)])
    assert odd.utterance() == whole.utterance()


def test_other_rates_are_resampled(spoken) -> None:  # noqa: ANN001
    audio, rate, start_ms, end_ms = spoken
    for target in (16000, 48000, 8000):
        resampled = resample_poly(audio.astype(np.float32), target, rate).astype("<i2")
        data = resampled.tobytes()
        events = _run(StreamingVad(target), data, _frames(len(data), 2 * target // 50))
        assert [e.kind for e in events] == ["speech_started", "speech_ended"], target
        assert abs(events[0].at_ms - start_ms) < 150, target
        assert end_ms - 150 < events[1].at_ms < end_ms + 300, target


@pytest.mark.parametrize("level", [0.0, 30.0, 300.0])
def test_silence_and_low_noise_are_not_speech(level: float) -> None:
    rate = 16000
    noise = np.random.default_rng(3).normal(0.0, level, 5 * rate) if level else np.zeros(5 * rate)
    vad = StreamingVad(rate)
    data = noise.astype("<i2").tobytes()
    assert _run(vad, data, _frames(len(data), 640)) == []
    assert not vad.speaking and vad.utterance() == b""
    assert vad.fed_ms == pytest.approx(5000)


def test_long_speech_is_cut_at_the_utterance_limit(spoken) -> None:  # noqa: ANN001
    audio, rate, start_ms, _ = spoken
    vad = StreamingVad(rate, max_utterance_ms=1000)
    data = audio.tobytes()
    events = _run(vad, data, _frames(len(data), 2 * rate // 50))
    assert events[1].kind == "speech_ended"
    assert events[1].at_ms - events[0].at_ms == pytest.approx(1000, abs=40)


def test_reset_starts_a_new_clock(spoken) -> None:  # noqa: ANN001
    audio, rate, start_ms, _ = spoken
    vad = StreamingVad(rate)
    data = audio.tobytes()
    first = _run(vad, data, [len(data)])
    vad.reset()
    assert vad.fed_ms == 0 and vad.utterance() == b""
    assert _run(vad, data, [len(data)]) == first


@pytest.mark.parametrize(("kwargs", "word"), [({"sample_rate_hz": 4000}, "sample_rate_hz"),
                                              ({"threshold": 1.5}, "threshold")])
def test_bad_settings_name_the_argument(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        StreamingVad(**kwargs)


def test_a_pause_is_reported_before_the_end_of_turn(spoken) -> None:  # noqa: ANN001
    audio, rate, _, _ = spoken
    vad = StreamingVad(rate, pause_ms=200)
    data = audio.tobytes()
    step = 2 * rate // 50
    events: list[VadEvent] = []
    at_pause: list[bytes] = []
    for offset in range(0, len(data), step):
        for event in vad.feed(data[offset:offset + step]):
            events.append(event)
            if event.kind == "speech_paused":
                at_pause.append(vad.utterance())
    kinds = [e.kind for e in events]
    assert kinds[0] == "speech_started" and kinds[-2:] == ["speech_paused", "speech_ended"]
    paused, ended = events[-2:]
    # the same silence, heard 200 ms in (rounded up to a window) rather than 500 ms in
    assert paused.at_ms == ended.at_ms
    assert 200 <= paused.detected_ms - paused.at_ms < 200 + 32 + 1
    # what was heard by the pause is the utterance the end of turn gives
    assert at_pause[-1] == vad.utterance()
    # without pause_ms: the events of before
    plain = _run(StreamingVad(rate), data, _frames(len(data), step))
    assert plain == [e for e in events if e.kind in ("speech_started", "speech_ended")]


def test_speech_after_a_pause_resumes_the_same_utterance(spoken) -> None:  # noqa: ANN001
    audio, rate, start_ms, end_ms = spoken
    voice = audio[int(start_ms * rate / 1000):int(end_ms * rate / 1000)]
    gap = np.zeros(int(0.35 * rate), dtype="<i2")  # longer than pause_ms, shorter than 500
    lead, tail = np.zeros(rate // 2, dtype="<i2"), np.zeros(rate, dtype="<i2")
    data = np.concatenate([lead, voice, gap, voice, tail]).astype("<i2").tobytes()
    vad = StreamingVad(rate, pause_ms=200)
    events = _run(vad, data, _frames(len(data), 2 * rate // 50))
    kinds = [e.kind for e in events]
    assert kinds.count("speech_started") == 1 and kinds.count("speech_ended") == 1
    assert "speech_resumed" in kinds
    resumed = [e for e in events if e.kind == "speech_resumed"]
    # every resume follows a pause; the one after the gap comes when the voice does
    for index, kind in enumerate(kinds):
        if kind == "speech_resumed":
            assert kinds[index - 1] == "speech_paused"
    second_voice_ms = 500 + (end_ms - start_ms) + 350
    assert any(abs(e.at_ms - second_voice_ms) < 150 for e in resumed)
    utterance = np.frombuffer(vad.utterance(), dtype="<i2")
    assert len(utterance) > 2 * len(voice)  # both halves, one utterance


def test_pause_ms_must_be_shorter_than_the_end_of_turn() -> None:
    with pytest.raises(ValueError, match="pause_ms"):
        StreamingVad(16000, pause_ms=500)
