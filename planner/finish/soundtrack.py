"""The soundtrack: song and dialogue mixed, loudness-normalised, encoded as the video's AAC track.

Mixing: the song is decoded as it is (resampled only when its rate is not 48 kHz, mono
duplicated to both channels), then padded with silence or trimmed to the video. Under each
dialogue line the song is ducked by 6 dB (50 ms linear ramps either side) and the lines are
added at their own level. The song's file is only read, never changed.

Level (`write_soundtrack`): by default the mix is normalised for the platforms that play it, to
-14 LUFS integrated with true peaks at most -1 dBTP (`loudness.Normaliser`: one gain, then a
true-peak look-ahead limiter only where the peaks would pass the ceiling). AAC coding raises
peaks (by up to about 1 dB on sharp transients at 192 kb/s), so the limiter first aims
`AAC_HEADROOM_DB` under the ceiling; the encoded track is decoded and measured, so the figures
reported are those a player decodes, and while a peak is still over the ceiling the limiter aims
lower by that excess and the track is encoded again (`ENCODE_TRIES` in all). Without a target
the mix keeps its own level and only a sample over full scale is brought under it by a
look-ahead peak limiter (5 ms attack and release).

One AAC track, 48 kHz stereo at 192 kb/s, exactly as long as the video.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from kantoku.planner.finish.loudness import Level, LoudnessTarget, Normaliser, measure
from kantoku.services._core.errors import KantokuError, invalid
from kantoku.services._core.files import require_file

SAMPLE_RATE_HZ = 48_000
AUDIO_LAYOUT = "stereo"
AUDIO_BIT_RATE = 192_000
DUCK_DB = -6.0
DUCK_RAMP_S = 0.05
LIMIT_CEILING = 1.0
LIMIT_WINDOW_S = 0.005
#: How far under the true-peak ceiling the limiter first aims, for the peaks AAC coding adds
#: (up to about 1 dB at 192 kb/s on sharp transients).
AAC_HEADROOM_DB = 1.0
#: Encodes at most; each next one limits lower by what the one before went over the ceiling.
ENCODE_TRIES = 4
#: Added to that excess, so the next encode lands under the ceiling (dB).
TRIM_MARGIN_DB = 0.1
#: Further from the target than this (LU), the notes say so.
MISS_LU = 1.0
_ENCODE_CHUNK = SAMPLE_RATE_HZ


@dataclass(frozen=True)
class DialogueInput:
    """One spoken line (a WAV file) placed at `start_s` seconds into the video."""

    path: Path
    start_s: float


@dataclass(frozen=True)
class LoudnessReport:
    """The mix's level before and the encoded track's after, against the target."""

    target: LoudnessTarget
    before: Level
    after: Level
    gain_db: float
    limited_db: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the ledger's assemble entry."""
        return {"target_lufs": self.target.integrated_lufs,
                "ceiling_dbtp": self.target.true_peak_dbtp, "before": self.before.as_dict(),
                "after": self.after.as_dict(), "gain_db": round(self.gain_db, 2),
                "limited_db": round(self.limited_db, 2)}

    def note(self) -> str:
        """One line for the job's notes."""
        return (f"audio: {_level(self.before)} normalised to {_level(self.after)} (target "
                f"{self.target.integrated_lufs:g} LUFS, true peak at most "
                f"{self.target.true_peak_dbtp:g} dBTP): gain {self.gain_db:+.1f} dB, limiter "
                f"up to {self.limited_db:.1f} dB")


def samples_for(frames: int, fps: int) -> int:
    """Audio samples at 48 kHz that last exactly as long as `frames` video frames (rounded)."""
    return (frames * SAMPLE_RATE_HZ + fps // 2) // fps


def write_soundtrack(mix: np.ndarray, path: Path, loudness: LoudnessTarget | None,
                     notes: list[str]) -> LoudnessReport | None:
    """Encodes `mix` as an AAC track in an MP4 audio file at `path`, at the level asked for.

    Args:
        mix: (2, samples) float32 at 48 kHz, from `mix_audio`.
        path: the file to write (replaced).
        loudness: the target; None keeps the mix's level (see the module docstring).
        notes: receives a line on the normalisation or the peak limiting.

    Returns:
        The loudness before and after with the gain and limiting, or None without a target.
    """
    if loudness is None:
        _encode_aac(limit_peaks(mix, notes), path)
        return None
    ceiling = loudness.true_peak_dbtp
    normaliser = Normaliser(mix, SAMPLE_RATE_HZ)
    headroom = AAC_HEADROOM_DB
    for _ in range(ENCODE_TRIES):
        track, done = normaliser.normalise(loudness.integrated_lufs, ceiling - headroom)
        if done.before.integrated_lufs is None:
            track = limit_peaks(mix, notes)
        _encode_aac(track, path)
        after = measure(decode_audio(path, "the encoded soundtrack", "assemble again")
                        [:, :mix.shape[1]], SAMPLE_RATE_HZ)
        if (done.before.integrated_lufs is None or after.true_peak_dbtp is None
                or after.true_peak_dbtp <= ceiling):
            break
        headroom += after.true_peak_dbtp - ceiling + TRIM_MARGIN_DB
    report = LoudnessReport(loudness, done.before, after, done.gain_db, done.limited_db)
    _note(report, notes)
    return report


def _note(report: LoudnessReport, notes: list[str]) -> None:
    before, after, ceiling = report.before, report.after, report.target.true_peak_dbtp
    if before.integrated_lufs is not None:
        notes.append(report.note())
    elif before.true_peak_dbtp is not None:  # silence needs no note
        notes.append("audio: too short (under one 400 ms block) or too quiet (under -70 LUFS) "
                     "to measure its loudness; not normalised")
    target = report.target.integrated_lufs
    if after.integrated_lufs is not None and abs(after.integrated_lufs - target) > MISS_LU:
        notes.append(f"audio: reached {after.integrated_lufs:.1f} LUFS, not the {target:g} LUFS "
                     f"target: under the {ceiling:g} dBTP ceiling this mix takes no more "
                     "limiting; a lower loudness keeps more of its dynamics")
    if after.true_peak_dbtp is not None and after.true_peak_dbtp > ceiling:
        notes.append(f"audio: the AAC encoder left true peaks at {after.true_peak_dbtp:+.1f} "
                     f"dBTP, over the {ceiling:g} dBTP ceiling")


def _encode_aac(audio: np.ndarray, path: Path) -> None:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE_HZ, layout=AUDIO_LAYOUT)
        stream.bit_rate = AUDIO_BIT_RATE
        for start in range(0, audio.shape[1], _ENCODE_CHUNK):
            chunk = np.ascontiguousarray(audio[:, start:start + _ENCODE_CHUNK])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=AUDIO_LAYOUT)
            frame.sample_rate = SAMPLE_RATE_HZ
            frame.pts = start
            frame.time_base = Fraction(1, SAMPLE_RATE_HZ)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _level(level: Level) -> str:
    lufs = "silence" if level.integrated_lufs is None else f"{level.integrated_lufs:.1f} LUFS"
    peak = "" if level.true_peak_dbtp is None else f", true peak {level.true_peak_dbtp:+.1f} dBTP"
    return lufs + peak


# --- mixing ----------------------------------------------------------------------------------


def mix_audio(samples: int, song: Path | None, dialogue: Sequence[DialogueInput],
              notes: list[str]) -> np.ndarray:
    """The mix: (2, samples) float32 at 48 kHz, at its own level (see the module docstring).

    Args:
        samples: length of the soundtrack (the video's duration at 48 kHz).
        song: audio file played from the start, padded with silence or trimmed to `samples`.
        dialogue: lines placed at their start times; a line running past the end is trimmed.
        notes: receives a line for every padding, trimming and dropped line.
    """
    mix = np.zeros((2, samples), dtype=np.float32)
    if song is not None:
        _place_song(mix, decode_audio(song, "the song", "pass a WAV, FLAC, MP3 or OGG file"),
                    song, notes)
    if dialogue:
        voices, duck = _place_dialogue(samples, dialogue, notes)
        if song is not None:
            mix *= duck
        mix += voices
    return mix


def decode_audio(path: Path, what: str, todo: str) -> np.ndarray:
    """(2, n) float32 samples of an audio file at 48 kHz, decoded with PyAV (FFmpeg).

    Samples are converted to float exactly; the rate is converted only when it is not 48 kHz;
    mono is duplicated to both channels and more than two channels are downmixed to stereo.

    Raises:
        KantokuError: INVALID_REQUEST naming `path` when it is missing or not decodable audio.
    """
    require_file(path, what, todo)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise _bad_audio(path, what, "has no audio stream", todo)
            chunks = _decode_stream(container)
    except av.FFmpegError as exc:
        raise _bad_audio(path, what, f"is not readable audio ({exc})", todo) from None
    if not chunks:
        raise _bad_audio(path, what, "decodes to no samples", todo)
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return samples


def _decode_stream(container: InputContainer) -> list[np.ndarray]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(
        format="fltp", layout=AUDIO_LAYOUT if stream.channels > 2 else None,
        rate=SAMPLE_RATE_HZ if stream.rate != SAMPLE_RATE_HZ else None)
    chunks: list[np.ndarray] = []
    for frame in container.decode(stream):
        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    return [chunk for chunk in chunks if chunk.shape[1]]


def _bad_audio(path: Path, what: str, problem: str, todo: str) -> KantokuError:
    return invalid(f"{what} ({path}) {problem}; {todo}", reason="AUDIO_INVALID", path=str(path))


def _place_song(mix: np.ndarray, song: np.ndarray, path: Path, notes: list[str]) -> None:
    length = min(song.shape[1], mix.shape[1])
    mix[:, :length] = song[:, :length]
    difference = (song.shape[1] - mix.shape[1]) / SAMPLE_RATE_HZ
    if difference > 0:
        notes.append(f"song {path.name}: trimmed the last {difference:.3f} s to the video length")
    elif difference < 0:
        notes.append(f"song {path.name}: {-difference:.3f} s shorter than the video; padded "
                     "with silence")


def _place_dialogue(samples: int, dialogue: Sequence[DialogueInput],
                    notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The dialogue lines summed at their places, and the song's ducking gain (1 = none)."""
    voices = np.zeros((2, samples), dtype=np.float32)
    duck = np.ones(samples, dtype=np.float32)
    for line in dialogue:
        if line.start_s < 0:
            raise invalid(f"dialogue {line.path} starts at {line.start_s} s; pass a start time "
                          "of 0 or more", reason="DIALOGUE_INVALID")
        audio = decode_audio(line.path, "the dialogue line", "synthesize the line again")
        start = round(line.start_s * SAMPLE_RATE_HZ)
        length = min(audio.shape[1], samples - start)
        if length <= 0:
            notes.append(f"dialogue {line.path.name} at {line.start_s:.3f} s: starts after the "
                         "end of the video; left out")
            continue
        if length < audio.shape[1]:
            notes.append(f"dialogue {line.path.name} at {line.start_s:.3f} s: trimmed the last "
                         f"{(audio.shape[1] - length) / SAMPLE_RATE_HZ:.3f} s at the end of the "
                         "video")
        voices[:, start:start + length] += audio[:, :length]
        _duck(duck, start, start + length)
    return voices, duck


def _duck(gain: np.ndarray, start: int, end: int) -> None:
    """Lowers `gain` to DUCK_DB over [start, end) with linear ramps of DUCK_RAMP_S either side."""
    ramp = round(DUCK_RAMP_S * SAMPLE_RATE_HZ)
    low, high = max(0, start - ramp), min(gain.shape[0], end + ramp)
    level = 10 ** (DUCK_DB / 20)
    shape = np.interp(np.arange(low, high), [start - ramp, start, end, end + ramp],
                      [1.0, level, level, 1.0]).astype(np.float32)
    np.minimum(gain[low:high], shape, out=gain[low:high])


def limit_peaks(mix: np.ndarray, notes: list[str]) -> np.ndarray:
    """A look-ahead limiter that acts only where a sample would exceed LIMIT_CEILING.

    The gain is the needed gain's running minimum over ±window, smoothed by a moving average over
    the same ±window, so it never exceeds the needed gain and changes over ~2 windows.
    """
    peaks = np.abs(mix).max(axis=0, initial=0.0)
    peak = float(peaks.max(initial=0.0))
    if peak <= LIMIT_CEILING:
        return mix
    needed = np.minimum(1.0, LIMIT_CEILING / np.maximum(peaks, 1e-9))
    size = 2 * round(LIMIT_WINDOW_S * SAMPLE_RATE_HZ) + 1
    gain = uniform_filter1d(minimum_filter1d(needed, size, mode="nearest"), size, mode="nearest")
    gain = np.minimum(gain, needed).astype(np.float32)
    notes.append(f"audio: the mix peaked at {20 * np.log10(peak):+.1f} dBFS; limited to "
                 f"{20 * np.log10(LIMIT_CEILING):+.1f} dBFS")
    return mix * gain
