"""Make the example song: a little J-pop-ish tune synthesized from numbers, the same every run.

The kantoku project made this song and releases it under CC0-1.0. 120 BPM in 4/4 (a bar is 2 s):
a quiet intro (pad and hi-hat), then verse and chorus (repeated for longer songs) and an outro
that reprises the chorus line and fades out. Only numpy; the drum noise comes from a seeded
generator, so the same ``--seconds`` always gives the same bytes.

    python examples/make_song.py --seconds 30 --out examples/song.wav
"""

from __future__ import annotations

import argparse
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

BPM = 120
BEAT_S = 60.0 / BPM
BAR_S = 4 * BEAT_S
SEED = 20250501
PEAK = 0.89  # about -1 dBFS
DRIVE = 1.8  # soft saturation before the final level

#: One chord per bar, looped within a section; pad voicings as MIDI note numbers.
CHORDS = {"intro": ["F", "G", "Em", "Am"], "verse": ["C", "G", "Am", "F"],
          "chorus": ["F", "G", "Em", "Am"], "outro": ["F", "G", "C", "C"]}
TRIADS = {"C": (48, 52, 55), "F": (53, 57, 60), "G": (55, 59, 62), "Em": (52, 55, 59),
          "Am": (57, 60, 64)}
#: Melodies as "NOTE:beats" ("r" rests), four bars a phrase, looped within a section.
_CHORUS_A = "C5:.5 C5:.5 D5:.5 E5:.5 F5:1 E5:.5 C5:.5  D5:.5 D5:.5 E5:.5 D5:.5 B4:.5 G5:1.5"
MELODIES = {
    "verse": "r:1 E4:.5 G4:.5 A4:.5 G4:.5 A4:.5 C5:.5  D5:.5 C5:.5 A4:.5 C5:.5 D5:2 "
             "r:.5 C5:.5 C5:.5 B4:.5 A4:.5 G4:.5 E4:1  A4:3 r:1",
    "chorus": _CHORUS_A + "  G5:.5 E5:.5 D5:1 B4:.5 B4:.5 D5:.5 E5:.5  D5:.5 C5:.5 A4:3",
    "outro": _CHORUS_A + "  C5:4 r:4",
}
#: Eight eighth-note steps a bar.
DRUMS = {"intro": {"hat": "x.x.x.x."},
         "verse": {"kick": "x...x.x.", "snare": "..x...x.", "hat": "xxxxxxxx"},
         "chorus": {"kick": "x.x.x.x.", "snare": "..x...x.", "hat": "xxxxxxxx"},
         "outro": {"kick": "x.......", "hat": "x.x.x.x."}}
#: Gain per part and section; the chorus is the loudest and has the saw lead.
LEVELS = {"intro": {"pad": .15, "hat": .6, "kick": 0, "snare": 0, "bass": 0, "lead": 0},
          "verse": {"pad": .09, "hat": .8, "kick": .7, "snare": 1.1, "bass": .45, "lead": .30},
          "chorus": {"pad": .16, "hat": 1.1, "kick": .95, "snare": 1.5, "bass": .6, "lead": .42},
          "outro": {"pad": .14, "hat": .45, "kick": .5, "snare": 0, "bass": .35, "lead": .22}}
LEAD = {"verse": "sine", "chorus": "saw", "outro": "sine"}
#: Timbre: (harmonics, attack, decay, sustain, release) with seconds for the times.
TIMBRES = {"pad": (6, .35, .4, .7, .5), "bass": (3, .005, .12, .55, .04),
           "sine": (1, .015, .15, .65, .2), "saw": (12, .01, .1, .7, .2)}


def SECTIONS(seconds: float) -> list[tuple[str, float, float]]:  # noqa: N802
    """``(label, start_s, end_s)`` of the song's sections (intro, verse, chorus, outro) for a
    length of ``seconds``: on bar lines, the last one ending at ``seconds``."""
    bars = seconds / BAR_S
    if bars < 3:
        return [("chorus", 0.0, seconds)]
    parts: list[tuple[str, float]]
    if bars < 12:
        intro = float(bars // 3)
        verse = float((bars - intro) // 2)
        parts = [("intro", intro), ("verse", verse), ("chorus", bars - intro - verse)]
    else:
        used = 4.0 if bars >= 14 else 2.0
        parts = [("intro", used)]
        while used + 10 <= bars:
            parts += [("verse", 4.0), ("chorus", 4.0)]
            used += 8
        if bars - used >= 6:
            parts.append(("chorus", 4.0))
            used += 4
        parts.append(("outro", bars - used))
    sections, start = [], 0.0
    for label, length in parts:
        sections.append((label, start * BAR_S, min((start + length) * BAR_S, seconds)))
        start += length
    return sections


def midi(name: str) -> int:
    """MIDI number of a note name such as ``"A4"`` (69) or ``"F#3"``."""
    step = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[name[0]]
    return 12 * (int(name[-1]) + 1) + step + name.count("#")


def melody(text: str) -> list[tuple[float, float, int | None]]:
    """``(start_beat, beats, midi or None for a rest)`` for each token of a melody string."""
    events, beat = [], 0.0
    for token in text.split():
        name, beats = token.split(":")
        events.append((beat, float(beats), None if name == "r" else midi(name)))
        beat += float(beats)
    return events


@lru_cache(maxsize=256)
def _tone(note: float, seconds: float, timbre: str, sample_rate: int) -> np.ndarray:
    """A note of ``timbre`` (sine or band-limited saw) under its ADSR envelope, release included."""
    harmonics, attack, decay, sustain, release = TIMBRES[timbre]
    freq = 440.0 * 2 ** ((note - 69) / 12)
    t = np.arange(int((seconds + release) * sample_rate)) / sample_rate
    wave_ = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        if k * freq < 0.45 * sample_rate:
            wave_ += np.sin(2 * np.pi * k * freq * t) / k
    attack = min(attack, seconds / 2)
    decay = min(decay, seconds - attack)
    envelope = np.interp(t, [0, attack, attack + decay, seconds, seconds + release],
                         [0, 1, sustain, sustain, 0])
    return wave_ * envelope / (1.6 if harmonics > 1 else 1.0)


def _noise_hit(rng: np.random.Generator, seconds: float, decay_s: float, band: tuple[int, int],
               sample_rate: int) -> np.ndarray:
    """Uniform noise band-passed to ``band`` Hz (an FFT mask) under an exponential decay."""
    n = int(seconds * sample_rate)
    spectrum = np.fft.rfft(rng.random(n) * 2 - 1)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum[(freqs < band[0]) | (freqs > band[1])] = 0
    noise = np.fft.irfft(spectrum, n)
    return noise / np.abs(noise).max() * np.exp(-np.arange(n) / sample_rate / decay_s)


def drum_kit(sample_rate: int) -> dict[str, np.ndarray]:
    """Kick (pitched-down sine), snare (noise and body), hat and crash (high-passed noise)."""
    rng = np.random.default_rng(SEED)
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    kick = np.sin(2 * np.pi * np.cumsum(45 + 110 * np.exp(-t / 0.03)) / sample_rate)
    body = np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05)
    snare = 0.8 * _noise_hit(rng, 0.4, 0.07, (200, 6000), sample_rate) + 0.5 * body
    return {"kick": kick * np.exp(-t / 0.12), "snare": snare,
            "hat": _noise_hit(rng, 0.08, 0.018, (7000, 16000), sample_rate),
            "crash": 0.35 * _noise_hit(rng, 2.0, 0.6, (4500, 16000), sample_rate)}


class _Mix:
    """A stereo float64 buffer that mono sounds are mixed into."""

    def __init__(self, samples: int, sample_rate: int) -> None:
        self.buffer = np.zeros((samples, 2))
        self.sample_rate = sample_rate

    def add(self, at_s: float, sound: np.ndarray, gain: float, pan: float = 0.0) -> None:
        """Mix a mono ``sound`` in at ``at_s`` (pan -1 left .. 1 right, constant power)."""
        start = int(round(at_s * self.sample_rate))
        end = min(start + len(sound), len(self.buffer))
        if end <= start or gain == 0:
            return
        angle = (pan + 1) * np.pi / 4
        piece = sound[: end - start] * gain
        self.buffer[start:end, 0] += piece * np.cos(angle)
        self.buffer[start:end, 1] += piece * np.sin(angle)


def _backing(mix: _Mix, label: str, start: float, end: float, kit: dict[str, np.ndarray]) -> None:
    """Pad (two detuned voices, wide), bass on the chord roots and drums, bar by bar."""
    level, rate = LEVELS[label], mix.sample_rate
    for bar in range(int(np.ceil((end - start) / BAR_S - 1e-9))):
        t0 = start + bar * BAR_S
        hold = min(BAR_S, end - t0)
        triad = TRIADS[CHORDS[label][bar % 4]]
        for note in triad:
            mix.add(t0, _tone(note - 0.06, hold, "pad", rate), level["pad"], -0.7)
            mix.add(t0, _tone(note + 0.06, hold, "pad", rate), level["pad"], 0.7)
        step = BAR_S if label == "outro" else BEAT_S / 2
        for k in range(int(round(hold / step))):  # octave jumps in the chorus
            note = triad[0] - 24 + (12 if label == "chorus" and k % 2 else 0)
            mix.add(t0 + k * step, _tone(note, step * 0.8, "bass", rate), level["bass"])
        for part, steps in DRUMS[label].items():
            for k, hit in enumerate(steps[: int(round(hold / (BEAT_S / 2)))]):
                if hit == "x":
                    mix.add(t0 + k * BEAT_S / 2, kit[part], level[part] * (0.6 if k % 2 else 1),
                            0.35 if part == "hat" else 0.0)
    if label == "chorus":
        mix.add(start, kit["crash"], 1.0, -0.3)


def _lead(mix: _Mix, label: str, start: float, end: float) -> None:
    """The section's melody, looped to fill it, with a ping-pong echo."""
    gain = LEVELS[label]["lead"]
    events = melody(MELODIES[label]) if gain else []
    for loop in range(0, int(np.ceil((end - start) / BEAT_S)), 16):
        for beat, beats, pitch in events:
            at = start + (loop + beat) * BEAT_S
            if pitch is not None and at < end - 1e-9:
                tone = _tone(pitch, min(beats * BEAT_S, end - at), LEAD[label], mix.sample_rate)
                mix.add(at, tone, gain)
                mix.add(at + 0.75 * BEAT_S, tone, gain * 0.22, 0.8)
                mix.add(at + 1.5 * BEAT_S, tone, gain * 0.12, -0.8)


def synthesize(seconds: float, sample_rate: int = 44100) -> np.ndarray:
    """Render the song.

    Args:
        seconds: Length; the structure (see ``SECTIONS``) is scaled to fit it.
        sample_rate: Samples per second.

    Returns:
        float32 samples, shape ``(round(seconds * sample_rate), 2)``, peak ``PEAK``, fading to
        silence at the end.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    n = int(round(seconds * sample_rate))
    mixer = _Mix(n, sample_rate)
    kit = drum_kit(sample_rate)
    sections = SECTIONS(seconds)
    for label, start, end in sections:
        _backing(mixer, label, start, end, kit)
        _lead(mixer, label, start, end)
    mix = mixer.buffer
    last = sections[-1][2] - sections[-1][1]
    fade_s = min(4.0, max(1.5, last / 2)) if sections[-1][0] == "outro" else min(2.0, seconds / 4)
    fade = min(n, int(fade_s * sample_rate))
    mix[-fade:] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade)))[:, None]
    mix[: int(0.005 * sample_rate)] *= np.linspace(0, 1, int(0.005 * sample_rate))[:, None]
    mix = np.tanh(DRIVE * mix / max(float(np.abs(mix).max()), 1e-9))  # soft limiter
    return (mix * PEAK / float(np.abs(mix).max())).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 44100) -> None:
    """Write float samples in [-1, 1] as a 16-bit PCM WAV (stdlib ``wave``: a fixed header)."""
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--seconds`` (default 30) and ``--out`` (default examples/song.wav)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("song.wav"))
    parser.add_argument("--sample-rate", type=int, default=44100)
    args = parser.parse_args(argv)
    write_wav(args.out, synthesize(args.seconds, args.sample_rate), args.sample_rate)
    sections = ", ".join(f"{label} {a:g}-{b:g}s" for label, a, b in SECTIONS(args.seconds))
    print(f"{args.out}: {args.seconds:g} s at {BPM} BPM ({sections})")


if __name__ == "__main__":
    main()
