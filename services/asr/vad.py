"""Streaming voice activity detection for live mic audio: when a person starts and stops talking.

The model is Silero VAD v6, the ONNX file faster-whisper ships in its wheel
(`faster_whisper/assets/silero_vad_v6.onnx`), run by onnxruntime. It is chosen because the ASR
service needs that wheel anyway (no extra download or package), it is MIT-licensed, it needs no
torch, and one 32 ms window costs tens of microseconds on one CPU thread, so it can run on every
mic frame of every conversation. Its LSTM state (h, c) and the 64-sample context before each
512-sample window are kept across `feed` calls, so audio cut into frames of any size gives the
same probabilities as the whole recording.

Silero only says whether a window holds speech; the end of a turn is a fixed run of silence
(`end_of_turn_ms`). A shorter run (`pause_ms`) is reported on the way as `speech_paused`, and
speech that comes back before the end of turn as `speech_resumed`, so a caller can start working
on the utterance early (and drop that work if the person goes on).

A semantic end-of-turn model such as Smart Turn would add what silence
cannot: telling a pause in the middle of a sentence ("I'd like... um...") from a finished one,
so the reply could start sooner after a complete sentence and wait longer after a trailing "and".

Clock: every `at_ms` is milliseconds of mic audio since the first sample fed, whatever the rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: Silero works on 16 kHz windows of 512 samples (32 ms) with the 64 samples before each.
MODEL_RATE_HZ = 16000
WINDOW = 512
CONTEXT = 64
WINDOW_MS = 1000.0 * WINDOW / MODEL_RATE_HZ

_SESSION: Any = None


def _session() -> Any:
    """One onnxruntime session per process, shared by every StreamingVad (it is stateless)."""
    global _SESSION
    if _SESSION is None:
        import onnxruntime
        from faster_whisper.utils import get_assets_path

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 4
        _SESSION = onnxruntime.InferenceSession(
            os.path.join(get_assets_path(), "silero_vad_v6.onnx"),
            providers=["CPUExecutionProvider"], sess_options=options)
    return _SESSION


@dataclass(frozen=True)
class VadEvent:
    """A change of state. `at_ms` is when it happened in the audio (the first speech window for
    speech_started, the start of the closing silence for speech_ended); `detected_ms` is how
    much audio had been fed when it was decided.

    speech_paused: `pause_ms` of silence inside an utterance (`at_ms` where it began); the
    utterance may still end there. speech_resumed: speech again after a speech_paused, before
    the end of turn (`at_ms` the window it came back in).
    """

    kind: Literal["speech_started", "speech_paused", "speech_resumed", "speech_ended"]
    at_ms: float
    detected_ms: float = 0.0


class StreamingVad:
    """Feed PCM16 mic frames of any size; get speech_started / speech_ended events back.

    Args:
        sample_rate_hz: rate of the audio fed, 8000 to 48000 (resampled to 16 kHz inside).
        threshold: speech probability above which a window counts as speech; a window counts
            as silence below `threshold - 0.15` (the gap between is hysteresis).
        min_speech_ms: speech this long in a row starts an utterance (shorter clicks do not).
        end_of_turn_ms: silence this long ends it.
        pause_ms: silence this long inside an utterance is reported as `speech_paused` (None:
            never); less than `end_of_turn_ms`.
        pre_roll_ms: audio kept before the detected start in `utterance()`.
        post_roll_ms: audio kept after the last speech in `utterance()`.
        max_utterance_ms: an utterance this long is ended there (the recognizer takes 30 s).
    """

    def __init__(self, sample_rate_hz: int = 16000, threshold: float = 0.5,
                 min_speech_ms: float = 96.0, end_of_turn_ms: float = 500.0,
                 pre_roll_ms: float = 200.0, post_roll_ms: float = 200.0,
                 max_utterance_ms: float = 29_000.0, pause_ms: float | None = None) -> None:
        if not 8000 <= sample_rate_hz <= 48000:
            raise ValueError(f"sample_rate_hz: {sample_rate_hz} is outside 8000..48000")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold: {threshold} is outside 0..1")
        if pause_ms is not None and not 0.0 < pause_ms < end_of_turn_ms:
            raise ValueError(f"pause_ms: {pause_ms} must be above 0 and below end_of_turn_ms "
                             f"({end_of_turn_ms})")
        self.sample_rate_hz = sample_rate_hz
        self.threshold = threshold
        self.silence_threshold = max(0.01, threshold - 0.15)
        self.min_speech_ms = min_speech_ms
        self.end_of_turn_ms = end_of_turn_ms
        self.pause_ms = pause_ms
        self.pre_roll_ms = pre_roll_ms
        self.post_roll_ms = post_roll_ms
        self.max_utterance_ms = max_utterance_ms
        self._session = _session()
        self._resampler = _Resampler(sample_rate_hz)
        self.reset()

    def reset(self) -> None:
        """Forget everything: state, clock, buffered audio and the last utterance."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet in a window
        self._windows = 0  # windows run so far
        self._odd = b""  # half a sample left from the last frame
        self._resampler.reset()
        self.speaking = False
        self._run_start_ms: float | None = None  # speech run while not yet speaking
        self._silence_start_ms: float | None = None  # silence run while speaking
        self._paused = False  # speech_paused sent for the current silence run
        self._start_ms = 0.0
        self._audio = bytearray()  # fed PCM16, from input sample `_audio_origin` on
        self._audio_origin = 0
        self._fed = 0  # input samples fed
        self._last_utterance = b""
        #: Speech probability of the latest window (for meters and tuning).
        self.probability = 0.0

    @property
    def fed_ms(self) -> float:
        """Milliseconds of audio fed so far."""
        return 1000.0 * self._fed / self.sample_rate_hz

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Take the next PCM16 LE mono frame (any length); return the events it completes."""
        data = self._odd + bytes(pcm16)
        usable = len(data) - len(data) % 2
        self._odd = data[usable:]
        if not usable:
            return []
        data = data[:usable]
        self._audio += data
        self._fed += usable // 2
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, self._resampler(samples)])
        count = len(self._pending) // WINDOW
        events: list[VadEvent] = []
        if count:
            windows = self._pending[:count * WINDOW].reshape(count, WINDOW)
            self._pending = self._pending[count * WINDOW:]
            for probability in self._probabilities(windows):
                events.extend(self._step(float(probability)))
        self._trim()
        return events

    def utterance(self) -> bytes:
        """PCM16 at `sample_rate_hz` of the current utterance (while speaking) or the last one,
        from `pre_roll_ms` before its start; empty before the first. While speaking and in a
        silence, it ends `post_roll_ms` after the last speech, as it would if the turn ended
        there: after speech_paused it is the utterance speech_ended would give, unless the
        person goes on."""
        if self.speaking:
            end_ms = self.fed_ms if self._silence_start_ms is None else \
                min(self._silence_start_ms + self.post_roll_ms, self.fed_ms)
            return self._slice(self._start_ms - self.pre_roll_ms, end_ms)
        return self._last_utterance

    # -- inside ----------------------------------------------------------------------------

    def _probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Speech probability of each window; the model runs them in order as one sequence, so
        one call per frame gives the same numbers as one call per window."""
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]])
        self._context = windows[-1, -CONTEXT:].copy()
        framed = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        out, self._h, self._c = self._session.run(None, {"input": framed, "h": self._h,
                                                         "c": self._c})
        probabilities = np.asarray(out, dtype=np.float32).reshape(-1)
        self.probability = float(probabilities[-1])
        return probabilities

    def _step(self, probability: float) -> list[VadEvent]:
        start_ms = self._windows * WINDOW_MS
        self._windows += 1
        end_ms = self._windows * WINDOW_MS
        if not self.speaking:
            if probability <= self.threshold:
                self._run_start_ms = None
                return []
            if self._run_start_ms is None:
                self._run_start_ms = start_ms
            if end_ms - self._run_start_ms < self.min_speech_ms:
                return []
            self.speaking, self._start_ms = True, self._run_start_ms
            self._run_start_ms, self._silence_start_ms = None, None
            return [VadEvent("speech_started", self._start_ms, end_ms)]
        events: list[VadEvent] = []
        if probability >= self.threshold:
            self._silence_start_ms = None
            if self._paused:
                self._paused = False
                events.append(VadEvent("speech_resumed", start_ms, end_ms))
        elif probability < self.silence_threshold and self._silence_start_ms is None:
            self._silence_start_ms = start_ms
        silence_ms = 0.0 if self._silence_start_ms is None else end_ms - self._silence_start_ms
        if self._silence_start_ms is not None and silence_ms >= self.end_of_turn_ms:
            return [*events, self._end(self._silence_start_ms, end_ms)]
        if end_ms - self._start_ms >= self.max_utterance_ms:
            return [*events, self._end(end_ms, end_ms)]
        if self._silence_start_ms is not None and self.pause_ms is not None and \
                not self._paused and silence_ms >= self.pause_ms:
            self._paused = True
            events.append(VadEvent("speech_paused", self._silence_start_ms, end_ms))
        return events

    def _end(self, at_ms: float, detected_ms: float) -> VadEvent:
        self._last_utterance = self._slice(self._start_ms - self.pre_roll_ms,
                                           min(at_ms + self.post_roll_ms, detected_ms))
        self.speaking, self._silence_start_ms, self._paused = False, None, False
        return VadEvent("speech_ended", at_ms, detected_ms)

    def _slice(self, from_ms: float, to_ms: float) -> bytes:
        first = max(self._audio_origin, round(from_ms * self.sample_rate_hz / 1000.0))
        last = min(self._fed, round(to_ms * self.sample_rate_hz / 1000.0))
        begin = 2 * (first - self._audio_origin)
        return bytes(self._audio[begin:begin + 2 * max(0, last - first)])

    def _trim(self) -> None:
        """Keep only what a coming utterance may need: all of the current one, else ~1 s."""
        if self.speaking:
            keep_from_ms = self._start_ms - self.pre_roll_ms
        else:
            keep_from_ms = self.fed_ms - self.pre_roll_ms - self.min_speech_ms - 800.0
        drop = round(keep_from_ms * self.sample_rate_hz / 1000.0) - self._audio_origin
        if drop > self.sample_rate_hz:  # trim in steps of a second or more, not every frame
            del self._audio[:2 * drop]
            self._audio_origin += drop


class _Resampler:
    """Any rate to 16 kHz, exactly the same however the audio is cut into frames.

    Above 16 kHz a low-pass (state kept between frames) removes what would alias; then linear
    interpolation picks the 16 kHz points, which is plenty for deciding speech or not.
    """

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._sos: np.ndarray | None = None
        if rate_hz > MODEL_RATE_HZ:
            from scipy.signal import butter, sosfilt

            self._sos = butter(6, 7600.0, fs=rate_hz, output="sos")
            self._sosfilt = sosfilt
        self.reset()

    def reset(self) -> None:
        self._zi = None if self._sos is None else np.zeros((self._sos.shape[0], 2))
        self._last = 0.0  # the input sample before the current frame
        self._consumed = 0  # input samples seen
        self._emitted = 0  # output samples made

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        if self.rate_hz == MODEL_RATE_HZ:
            return samples
        if self._sos is not None:
            samples, self._zi = self._sosfilt(self._sos, samples, zi=self._zi)
        first = self._consumed - 1  # input index of self._last
        self._consumed += len(samples)
        # output j sits at input position j * rate / 16000; make every one inside this frame
        stop = (self._consumed - 1) * MODEL_RATE_HZ // self.rate_hz + 1
        positions = np.arange(self._emitted, stop) * (self.rate_hz / MODEL_RATE_HZ)
        self._emitted = max(self._emitted, stop)
        known = np.concatenate([[self._last], samples])
        self._last = float(samples[-1])
        return np.interp(positions - first, np.arange(len(known)), known).astype(np.float32)
