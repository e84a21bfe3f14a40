"""TTS real-time factor per backend: synthesis seconds / audio seconds (lower is faster).

The baseline is the audio's own duration, measured in the same run; a ratio below 1 means faster
than real time. Run: .venv/bin/python bench/tts_rtf.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from kantoku.services.tts.factory import build_backends

TEXTS = {
    "en": "The director calls for one more take. The lights dim, the music swells, and the "
          "camera slowly pushes in on the singer as the chorus begins.",
    "ja": "監督がもう一度撮ろうと言いました。照明が落ちて、音楽が盛り上がり、サビが始まると、"
          "カメラがゆっくりと歌手に近づきます。",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'backend':<10} {'voice':<18} {'load s':>7} {'audio s':>8} {'synth s':>8} {'RTF':>6}")
    for name in ("piper", "kokoro"):
        started = time.perf_counter()
        backend = build_backends([name])[0]
        load_s = time.perf_counter() - started
        voice = backend.voices()[0]
        text = TEXTS[voice.language_codes[0][:2]]
        list(backend.synthesize("Warm up.", voice.voice_id, 1.0))  # first run allocates
        timings, audio_s = [], 0.0
        for _ in range(args.repeats):
            started = time.perf_counter()
            segments = list(backend.synthesize(text, voice.voice_id, 1.0))
            timings.append(time.perf_counter() - started)
            audio_s = sum(len(s.pcm) for s in segments) / voice.sample_rate_hz
        synth_s = statistics.median(timings)
        print(f"{name:<10} {voice.voice_id:<18} {load_s:7.2f} {audio_s:8.2f} {synth_s:8.3f} "
              f"{synth_s / audio_s:6.3f}")


if __name__ == "__main__":
    main()
