"""ASR real-time factor (recognition seconds / audio seconds) and the streaming VAD's cost.

The audio is the project's own TTS speaking a short turn in each language, so the baseline (the
audio's duration) is measured in the same run; a ratio below 1 is faster than real time. The VAD
line is microseconds of CPU per 32 ms window when fed 20 ms mic frames, and that as a share of
one core. Run: .venv/bin/python bench/asr_rtf.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.signal import resample_poly

from kantoku.services.asr.factory import build_backend
from kantoku.services.asr.settings import AsrSettings
from kantoku.services.asr.vad import WINDOW_MS, StreamingVad
from kantoku.services.tts.factory import build_backends

TURNS = {
    "en": ("piper", "en_US-joe-medium", "Could you tell me the way to the station, please?"),
    "ja": ("kokoro", "jf_alpha", "駅までの道を教えていただけますか。"),
}


def _speak(engine: str, voice_id: str, text: str) -> tuple[np.ndarray, int]:
    backend = build_backends([engine])[0]
    pcm = np.concatenate([s.pcm for s in backend.synthesize(text, voice_id, 1.0)])
    rate = next(v.sample_rate_hz for v in backend.voices() if v.voice_id == voice_id)
    return pcm.astype("<i2"), rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = AsrSettings()
    started = time.perf_counter()
    backend = build_backend(settings)
    print(f"whisper-base load {time.perf_counter() - started:.2f} s "
          f"(cpu_threads={settings.cpu_threads}, beam_size={settings.beam_size})")
    print(f"{'lang':<5} {'audio s':>8} {'asr s':>7} {'RTF':>6}  {'VAD us/window':>14} "
          f"{'VAD % core':>10}  transcript")
    for language, (engine, voice_id, text) in TURNS.items():
        pcm, rate = _speak(engine, voice_id, text)
        samples = resample_poly(pcm.astype(np.float32) / 32768.0, 16000, rate).astype(np.float32)
        audio_s = len(samples) / 16000
        backend.recognize(samples, language, True)  # first run allocates
        timings, heard = [], ""
        for _ in range(args.repeats):
            started = time.perf_counter()
            heard = backend.recognize(samples, language, True).text
            timings.append(time.perf_counter() - started)
        asr_s = statistics.median(timings)
        mic = (samples * 32767).astype("<i2").tobytes()
        vad = StreamingVad(16000)
        vad.feed(mic[:640])  # first run allocates
        started = time.process_time()
        for _ in range(args.repeats):
            vad.reset()
            for i in range(0, len(mic), 640):
                vad.feed(mic[i:i + 640])
        windows = args.repeats * len(mic) / 2 / 512
        per_window_us = 1e6 * (time.process_time() - started) / windows
        print(f"{language:<5} {audio_s:8.2f} {asr_s:7.3f} {asr_s / audio_s:6.3f}  "
              f"{per_window_us:14.0f} {100 * per_window_us / (1000 * WINDOW_MS):10.2f}  {heard}")


if __name__ == "__main__":
    main()
