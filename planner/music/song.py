"""Song analysis for music videos: tempo, beats, bars, sections, loudness, and cut candidates.

`analyze_song` decodes the song once (libsndfile for WAV, FLAC, OGG and MP3; PyAV/FFmpeg for
anything libsndfile cannot open), mixes it to mono at 22 050 Hz and derives everything from two
STFTs: 1024/256 samples (11.6 ms frames) for onsets and beats, 2048/512 (23.2 ms) for chroma
and MFCC.

- **Beats** — `librosa.beat.beat_track` on a log-mel onset envelope, aiming at the tempo of
  the envelope's strongest autocorrelation lag (weighted by librosa's log-normal prior around
  120 BPM), without trimming weak beats at the ends (so quiet intros keep theirs). Each beat is
  moved to the strongest onset within ±2 frames, refined to a fraction of a frame (parabola
  through the peak) and moved back by a quarter window (11.6 ms): a spectral-flux peak comes
  that late after a sharp attack, where the Hann window rises fastest. Beats whose onsets are
  under 3 times the song's mean onset strength are no pulse (a drone, noise): the song then
  has no beats, tempo 0 and a note. **Tempo** — 60 / the mean of the inter-beat intervals
  within ±15 % of their median (not quantised to whole frames, as a tempogram is).
- **Downbeats** — the song is taken to be in 4/4. Every beat gets a score: its onset strength,
  plus its low-band (< 200 Hz: kick drum, bass) onset strength, plus the harmonic change
  across it (cosine distance between the mean chroma of the beat before and the beat after),
  each divided by its mean over all beats. Of the four beat phases (beats 0, 4, 8, ...;
  1, 5, 9, ...; ...) the one with the highest mean score holds the downbeats; one phase holds
  for the whole song. A last downbeat less than half a bar before the end is dropped.
  **Bars** run from one downbeat to the next (the last one is at most 4 beats long).
- **Sections** — per bar (the first bar also takes the pickup before the first downbeat, the
  last one the tail), the mean chroma (12) and MFCC (13) are z-scored across the song (with a
  floor under each spread, so a song that barely changes keeps its small differences small)
  and weighted so each family counts the same, then averaged over 4 bars (so a chord
  progression within a section evens out). The bars are cut into k = ceil(bars / 6)
  contiguous segments (at least 2 for songs of 20 s or more) with the least total squared
  deviation (optimal, by dynamic programming); segments are at least 4 bars long, the first
  and last at least 2 (shorter ones would catch the ramps the averaging makes at a change).
  Boundaries therefore fall on downbeats; the first section starts at 0 s and the last ends at
  the end of the song. Without a steady beat, 2-second blocks stand in for bars.
- **Groups and labels** — two segments share a group letter (A, B, ... in order of
  appearance) when the distance between their mean bar features is under 0.3 or under half
  the median distance over all pairs (with three segments or more); transitively.
  Neighbouring segments of one group are merged into one section (unless that leaves fewer
  than the minimum). Then the first section is "intro" when it is quiet (energy under half the
  loudest section's), the last is "outro" when it is quiet (and a section is left between);
  of the others, the loudest group that repeats is "chorus" (the loudest group when none
  repeats), the group with the most sections among the rest (the earliest on a tie) is
  "verse", a repeating group that always comes just before a chorus is "pre-chorus", any other
  group is "bridge" when it occurs once and "part <letter>" when it repeats. A single group
  between intro and outro is "main": with nothing to contrast, verse or chorus would be a guess.
- **Energy** — RMS in 0.1 s windows (`energy_hz` = 10) divided by the loudest window, so 1.0
  is the loudest moment of the song. A section's energy is the mean over the windows wholly
  inside it; `loud_sections` are the sections at or above the median section energy (where
  plain-text lyrics are spread).

`choose_cuts` turns the analysis into candidate cut times, every one on a beat (see its
docstring for the density rules); `snap_to_beats` moves other cut times (the LLM planner's) to
the nearest beats; `sections_for_plan` gives the heuristic planner its sections.

Cost: librosa compiles its numba kernels when first imported, about 3-4 s once per process on
2 cores; the analysis itself takes about 0.3 % of the song's length (0.4 s for 120 s, 1.6 s
for 600 s) and peaks at about 0.9 GB of memory for a 600 s song.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf
from pydantic import BaseModel, ConfigDict, Field

from kantoku.planner.planning.brief import MAX_DURATION_S
from kantoku.planner.planning.heuristic import Section
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import KantokuError, invalid, not_found

#: Longest song kantoku analyses, in seconds (the same limit as a brief's running time).
MAX_SONG_S = MAX_DURATION_S
#: Shortest song, in seconds.
MIN_SONG_S = 2.0
#: A song whose peak sample is below this level (dBFS) is treated as silent.
SILENCE_DBFS = -60.0
#: Analysis rate; window and hop of the STFT for chroma and MFCC (a frame is 23.2 ms).
ANALYSIS_RATE_HZ = 22_050
N_FFT = 2048
HOP = 512
#: Window and hop of the STFT for the onset envelope and beats (a frame is 11.6 ms).
ONSET_N_FFT = 1024
ONSET_HOP = 256
#: A spectral-flux peak comes about a quarter window after a sharp attack (where the Hann
#: window rises fastest); beats are moved back by this much.
ONSET_LAG_S = ONSET_N_FFT / 4 / ANALYSIS_RATE_HZ
#: Resolution of `SongAnalysis.energy`.
ENERGY_HZ = 10.0
BEATS_PER_BAR = 4
#: Songs are first cut into one segment per this many bars; neighbouring segments that sound
#: alike are then merged, which leaves sections of about 8-16 bars.
UNITS_PER_SEGMENT = 6
#: Shortest section, in bars (fewer when the song is too short for that many sections); the
#: first and last sections (an intro, an outro) may be as short as MIN_EDGE_UNITS bars.
MIN_SEGMENT_UNITS = 4
MIN_EDGE_UNITS = 2
#: Bar features are averaged over 4 bars before sections are cut (see `_smoothed`).
SMOOTHING_WEIGHTS = (0.5, 1.0, 1.0, 1.0, 0.5)
#: Songs at least this long get at least two sections.
TWO_SECTIONS_FROM_S = 20.0
#: A section is quiet when its energy is under this fraction of the loudest section's.
QUIET_RATIO = 0.5
#: Tempo range and the centre of the tempo prior, in BPM.
MIN_BPM, MAX_BPM, PRIOR_BPM = 30.0, 320.0, 120.0
#: Beats count only when the onsets on them are this many times stronger than the song's mean
#: onset strength (songs with drums: 10-25; noise: 1.3; a steady tone: 2.4).
MIN_BEAT_SALIENCE = 3.0
#: Least spread (standard deviation across bars) assumed for chroma (0..1) and MFCC (dB-like)
#: before z-scoring, so that a song that barely changes does not have its noise magnified
#: (per-bar spread: songs 0.1-0.2 and 7-15; noise 0.015 and 0.5; a steady tone 0 and 0.1).
CHROMA_FLOOR, MFCC_FLOOR = 0.05, 2.0
#: Sections whose mean (floored, z-scored) features are closer than this always share a group
#: (the same part repeated: 0.03-0.1; different parts: over 1).
SAME_GROUP_DISTANCE = 0.3
#: Upper edge of the low band used to find downbeats (kick drum, bass).
LOW_BAND_HZ = 200.0
#: Cut density by a bar's level relative to the loudest bar (dB): the first threshold the level
#: reaches decides the cut step, in beats (8 = every 2 bars, 4 = every bar, 2 = every other beat,
#: 1 = every beat).
DENSITY_STEPS: tuple[tuple[float, int], ...] = ((-3.0, 1), (-6.0, 2), (-12.0, 4))
SPARSEST_STEP = 8
#: Shots may come out this much shorter than min_shot_s, so that beat tracking jitter does not
#: drop a cut every 2 beats at exactly 120 BPM.
MIN_SHOT_TOLERANCE_S = 0.025
DECODE_HINT = "use WAV, FLAC, MP3 or OGG"


class SongSection(BaseModel):
    """A contiguous part of the song; boundaries are on downbeats (the first starts at 0)."""

    model_config = ConfigDict(extra="forbid")

    label: str
    #: Similarity group: sections with the same letter sound alike.
    group: str
    start_s: float
    end_s: float
    #: Mean of the energy curve over the section (0..1).
    energy: float


class SongAnalysis(BaseModel):
    """Everything the planners need from a song; JSON-ready (`model_dump(mode="json")`)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    #: Exact: decoded samples / native rate.
    duration_s: float
    sample_rate_hz: int
    channels: int
    #: 0 when no steady beat was found.
    tempo_bpm: float
    beats_s: list[float]
    downbeats_s: list[float]
    #: [start, end] of every bar, from downbeat to downbeat.
    bars: list[tuple[float, float]]
    sections: list[SongSection]
    #: RMS loudness at `energy_hz`, 1.0 = the loudest window of the song.
    energy: list[float]
    energy_hz: float = ENERGY_HZ
    #: Sections at or above the median section energy (where lyrics are spread).
    loud_sections: list[SongSection] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


@dataclass
class _Audio:
    mono: np.ndarray
    rate: int
    channels: int
    frames: int
    peak: float


@dataclass
class _Features:
    onset: np.ndarray
    low_onset: np.ndarray
    chroma: np.ndarray
    mfcc: np.ndarray
    frames: int


def analyze_song(path: Path) -> SongAnalysis:
    """Decode and analyse a song (see the module docstring for the rules).

    Args:
        path: a WAV, FLAC, MP3 or OGG file (anything FFmpeg decodes is accepted too).

    Returns:
        The analysis; the same file always gives the same analysis.

    Raises:
        KantokuError: NOT_FOUND (SONG_NOT_FOUND) when the file does not exist; INVALID_REQUEST
            when it is not decodable audio (SONG_UNREADABLE), silent (SONG_SILENT), longer
            than MAX_SONG_S (SONG_TOO_LONG) or shorter than MIN_SONG_S (SONG_TOO_SHORT).
    """
    path = Path(path)
    if not path.is_file():
        raise not_found(f"{path}: no such song file; check the path", reason="SONG_NOT_FOUND",
                        path=str(path))
    audio = _decode(path)
    duration = audio.frames / audio.rate
    _check_duration(path, duration)
    if audio.peak < 10 ** (SILENCE_DBFS / 20):
        level = "-inf" if audio.peak <= 0 else f"{20 * math.log10(audio.peak):.0f}"
        raise invalid(f"{path}: the song is silent (peak {level} dBFS, below {SILENCE_DBFS:.0f} "
                      "dBFS); check the file or the export", reason="SONG_SILENT", path=str(path))
    if audio.channels > 1 and float(np.abs(audio.mono).max()) < 10 ** (SILENCE_DBFS / 20):
        raise invalid(f"{path}: the song is silent when its channels are mixed to mono (they "
                      "cancel out); flip the polarity of one channel", reason="SONG_SILENT",
                      path=str(path))
    y = _to_analysis_rate(audio)
    return _analyze(path, audio, duration, y)


def _analyze(path: Path, audio: _Audio, duration: float, y: np.ndarray) -> SongAnalysis:
    features = _features(y)
    notes: list[str] = []
    beats = [round(t, 4) for t in _beat_times(features.onset) if 0 <= t < duration]
    if len(beats) < 2 or _salience(beats, features.onset) < MIN_BEAT_SALIENCE:
        beats = []
        notes.append("no steady beat found: cuts are spaced evenly and sections use 2 s blocks")
    downbeats = beats[_downbeat_phase(beats, features)::BEATS_PER_BAR]
    if len(beats) > 1 and duration - downbeats[-1] < BEATS_PER_BAR / 2 * _beat_s(beats):
        downbeats = downbeats[:-1]  # a bar cut off after less than half its length
    energy = _energy_curve(y)
    sections = _sections(features, downbeats, duration, energy)
    return SongAnalysis(
        path=str(path), sha256=sha256_file(path), duration_s=duration, sample_rate_hz=audio.rate,
        channels=audio.channels, tempo_bpm=round(_tempo(beats), 2), beats_s=beats,
        downbeats_s=downbeats, bars=_bars(downbeats, beats, duration), sections=sections,
        energy=[round(float(e), 4) for e in energy], loud_sections=_loud_sections(sections),
        notes=notes)


# -- decoding ---------------------------------------------------------------------------------


#: Formats read with libsndfile; the rest with FFmpeg, which assembly decodes them with: its
#: MP3 reader (mpg123) conceals corrupt frames that FFmpeg then refuses after the render.
_SOUNDFILE_FORMATS = {"WAV", "WAVEX", "FLAC", "AIFF", "W64", "RF64"}


def warm_up() -> None:
    """Import librosa now (a few seconds, once per process), so a server's first song is
    analysed as fast as its next ones; blocking (run it in a thread)."""
    import librosa.beat  # noqa: F401 - the import is the point
    import librosa.feature  # noqa: F401
    import librosa.onset  # noqa: F401


def decode_mono(path: Path) -> tuple[np.ndarray, int]:
    """The song's samples mixed to mono (float32) at its own rate, decoded as `analyze_song`
    decodes it.

    Raises:
        KantokuError: SONG_UNREADABLE when the file is not decodable audio.
    """
    audio = _decode(Path(path))
    return audio.mono, audio.rate


def _decode(path: Path) -> _Audio:
    try:
        info = sf.info(str(path))
    except (RuntimeError, TypeError):  # sf.LibsndfileError is a RuntimeError
        return _decode_ffmpeg(path)
    if info.format not in _SOUNDFILE_FORMATS:
        return _decode_ffmpeg(path)
    if info.samplerate > 0:
        _check_header_duration(path, info.frames / info.samplerate)
    try:
        return _decode_soundfile(path)
    except RuntimeError:  # a file libsndfile opens but cannot read to the end
        return _decode_ffmpeg(path)


def _decode_soundfile(path: Path) -> _Audio:
    chunks: list[np.ndarray] = []
    peak = 0.0
    with sf.SoundFile(str(path)) as source:
        rate, channels = source.samplerate, source.channels
        for block in source.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
            peak = max(peak, float(np.abs(block).max(initial=0.0)))
            chunks.append(block.mean(axis=1))
    return _audio(path, chunks, rate, channels, peak)


def _decode_ffmpeg(path: Path) -> _Audio:
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise _undecodable(path, "no audio stream")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                _check_header_duration(path, float(stream.duration * stream.time_base))
            rate, chunks, peak, channels = stream.rate, [], 0.0, 0
            for block in _ffmpeg_blocks(container, stream):
                channels = block.shape[0]
                peak = max(peak, float(np.abs(block).max(initial=0.0)))
                chunks.append(block.mean(axis=0))
    except av.FFmpegError as exc:
        raise _undecodable(path, exc.strerror or type(exc).__name__) from None
    return _audio(path, chunks, rate, channels, peak)


def _ffmpeg_blocks(container: Any, stream: Any) -> Iterator[np.ndarray]:
    """(channels, n) float32 blocks at the stream's own rate and layout."""
    resampler = av.AudioResampler(format="fltp")
    for frame in container.decode(stream):
        for out in resampler.resample(frame):
            yield out.to_ndarray().astype(np.float32, copy=False)
    for out in resampler.resample(None):
        yield out.to_ndarray().astype(np.float32, copy=False)


def _audio(path: Path, chunks: list[np.ndarray], rate: int, channels: int,
           peak: float) -> _Audio:
    mono = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else \
        np.zeros(0, np.float32)
    if rate <= 0 or channels <= 0:
        raise _undecodable(path, "no audio samples")
    return _Audio(mono=mono, rate=int(rate), channels=int(channels), frames=int(mono.size),
                  peak=peak)


def _undecodable(path: Path, detail: str) -> KantokuError:
    return invalid(f"{path}: cannot decode audio ({detail}); {DECODE_HINT}",
                   reason="SONG_UNREADABLE", path=str(path))


def _check_header_duration(path: Path, duration: float) -> None:
    """Refuse a song the header says is far too long before decoding all of it."""
    if duration > MAX_SONG_S + 1.0:
        _check_duration(path, duration)


def _check_duration(path: Path, duration: float) -> None:
    if duration > MAX_SONG_S:
        raise invalid(f"{path}: the song is {duration:.1f} s long, over the limit of "
                      f"{MAX_SONG_S:.0f} s; trim it to {MAX_SONG_S:.0f} s or less",
                      reason="SONG_TOO_LONG", path=str(path))
    if duration < MIN_SONG_S:
        raise invalid(f"{path}: the song is {duration:.2f} s long; use a song of at least "
                      f"{MIN_SONG_S:.0f} s", reason="SONG_TOO_SHORT", path=str(path))


def _to_analysis_rate(audio: _Audio) -> np.ndarray:
    if audio.rate == ANALYSIS_RATE_HZ:
        return audio.mono
    import librosa

    return librosa.resample(audio.mono, orig_sr=audio.rate, target_sr=ANALYSIS_RATE_HZ,
                            res_type="soxr_hq").astype(np.float32, copy=False)



# -- features, beats, downbeats ---------------------------------------------------------------


def _features(y: np.ndarray) -> _Features:
    import librosa

    sr = ANALYSIS_RATE_HZ
    onset_mel = _mel_db(y, ONSET_N_FFT, ONSET_HOP)
    centers = librosa.mel_frequencies(n_mels=onset_mel.shape[0] + 2, fmax=sr / 2)[1:-1]
    low = max(2, int(np.sum(centers <= LOW_BAND_HZ)))
    power = _power(y, N_FFT, HOP)
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr), ref=np.max)
    return _Features(
        onset=librosa.onset.onset_strength(S=onset_mel, sr=sr, hop_length=ONSET_HOP,
                                           n_fft=ONSET_N_FFT),
        low_onset=librosa.onset.onset_strength(S=onset_mel[:low], sr=sr, hop_length=ONSET_HOP,
                                               n_fft=ONSET_N_FFT),
        chroma=librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        mfcc=librosa.feature.mfcc(S=mel_db, n_mfcc=13),
        frames=power.shape[1])


def _power(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    import librosa

    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    return np.square(power, out=power)


def _mel_db(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Log-power mel spectrogram (dB below its loudest bin)."""
    import librosa

    mel = librosa.feature.melspectrogram(S=_power(y, n_fft, hop), sr=ANALYSIS_RATE_HZ)
    return librosa.power_to_db(mel, ref=np.max)


def _beat_times(onset: np.ndarray) -> list[float]:
    """Beat times: tracked beats, each on its nearest onset peak, less the onset lag."""
    import librosa

    if not np.any(onset > 0):
        return []
    _, frames = librosa.beat.beat_track(onset_envelope=onset, sr=ANALYSIS_RATE_HZ,
                                        hop_length=ONSET_HOP, bpm=_tempo_guess(onset),
                                        units="frames", trim=False)
    peaks = np.unique([_refine_peak(onset, int(f)) for f in frames])
    return [float(f) * ONSET_HOP / ANALYSIS_RATE_HZ - ONSET_LAG_S for f in peaks]


def _tempo_guess(onset: np.ndarray) -> float:
    """The tempo the beat tracker aims at: the strongest lag of the onset envelope's
    autocorrelation over the whole song, weighted by librosa's prior (log-normal around
    120 BPM, one octave wide), between 30 and 320 BPM.

    librosa's own estimate (a tempogram of 8 s windows) gives the same answer on steady songs
    but costs seconds and 1.7 GB for a 600 s song at this hop; this costs a millisecond.
    """
    import librosa

    frames_per_minute = 60 * ANALYSIS_RATE_HZ / ONSET_HOP
    longest = int(frames_per_minute / MIN_BPM)
    correlation = librosa.autocorrelate(onset - onset.mean(), max_size=longest + 1)
    lags = np.arange(1, len(correlation))
    bpm = frames_per_minute / lags
    prior = np.exp(-0.5 * np.log2(bpm / PRIOR_BPM) ** 2)
    score = np.where(bpm <= MAX_BPM, np.maximum(correlation[1:], 0.0) * prior, 0.0)
    return float(bpm[np.argmax(score)]) if np.any(score > 0) else PRIOR_BPM


def _salience(beats: list[float], onset: np.ndarray) -> float:
    """Mean onset strength at the beats over the mean onset strength of the whole song."""
    frames = np.round((np.asarray(beats) + ONSET_LAG_S) * ANALYSIS_RATE_HZ / ONSET_HOP)
    at_beats = _around(onset, np.clip(frames.astype(int), 0, len(onset) - 1))
    mean = float(onset.mean())
    return float(at_beats.mean()) / mean if mean > 0 else 0.0


def _refine_peak(onset: np.ndarray, frame: int, reach: int = 2) -> float:
    """The onset peak within ±reach frames, to a fraction of a frame (parabola)."""
    lo, hi = max(0, frame - reach), min(len(onset), frame + reach + 1)
    peak = lo + int(np.argmax(onset[lo:hi]))
    if 0 < peak < len(onset) - 1:
        before, at, after = onset[peak - 1], onset[peak], onset[peak + 1]
        curvature = before - 2 * at + after
        if curvature < 0:
            return peak + float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))
    return float(peak)


def _tempo(beats: Sequence[float]) -> float:
    """60 / the mean inter-beat interval, over the intervals within 15 % of the median."""
    if len(beats) < 2:
        return 0.0
    intervals = np.diff(beats)
    median = float(np.median(intervals))
    steady = intervals[np.abs(intervals - median) <= 0.15 * median]
    return 60.0 / float(steady.mean()) if steady.size else 60.0 / median


def _downbeat_phase(beats: list[float], features: _Features) -> int:
    """The beat phase (0..3) whose beats carry the most onset, bass and harmonic change."""
    if len(beats) < BEATS_PER_BAR + 1:
        return 0
    times = np.asarray(beats) + ONSET_LAG_S
    onset_frames = np.clip(np.round(times * ANALYSIS_RATE_HZ / ONSET_HOP).astype(int), 0,
                           len(features.onset) - 1)
    frames = np.clip(np.round(np.asarray(beats) * ANALYSIS_RATE_HZ / HOP).astype(int), 0,
                     features.frames - 1)
    score = (_normalized(_around(features.onset, onset_frames))
             + _normalized(_around(features.low_onset, onset_frames))
             + _normalized(_chroma_change(features.chroma, frames)))
    phases = [float(score[p::BEATS_PER_BAR].mean()) for p in range(BEATS_PER_BAR)]
    return int(np.argmax(phases))


def _around(curve: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The curve's maximum within ±1 frame of each frame."""
    padded = np.pad(curve, 1)
    return np.max([padded[frames], padded[frames + 1], padded[frames + 2]], axis=0)


def _chroma_change(chroma: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Cosine distance between the mean chroma of the beat before and after each beat."""
    edges = np.concatenate([[0], frames, [chroma.shape[1]]])
    means = [chroma[:, a:b].mean(axis=1) if b > a else np.zeros(chroma.shape[0])
             for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return np.asarray([_cosine_distance(means[i], means[i + 1]) for i in range(len(frames))])


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 1.0 - float(a @ b) / norm if norm > 0 else 0.0


def _normalized(values: np.ndarray) -> np.ndarray:
    mean = float(values.mean()) if values.size else 0.0
    return values / mean if mean > 0 else np.zeros_like(values, dtype=float)


def _beat_s(beats: list[float]) -> float:
    """The median inter-beat interval."""
    return float(np.median(np.diff(beats)))


def _bars(downbeats: list[float], beats: list[float], duration: float) -> list[tuple[float, float]]:
    """From each downbeat to the next; the last bar is at most 4 beats long."""
    if not downbeats:
        return []
    bar_s = BEATS_PER_BAR * _beat_s(beats) if len(beats) > 1 else duration
    ends = [*downbeats[1:], min(duration, downbeats[-1] + bar_s)]
    return [(a, round(b, 4)) for a, b in zip(downbeats, ends, strict=True) if b > a]


# -- energy and sections ----------------------------------------------------------------------


def _energy_curve(y: np.ndarray) -> np.ndarray:
    window = int(ANALYSIS_RATE_HZ / ENERGY_HZ)
    count = math.ceil(len(y) / window)
    padded = np.zeros(count * window, np.float64)
    padded[:len(y)] = y
    rms = np.sqrt(np.mean(padded.reshape(count, window) ** 2, axis=1))
    return rms / rms.max() if rms.max() > 0 else rms


def _span_energy(energy: np.ndarray, start_s: float, end_s: float) -> float:
    """Mean of the energy windows that lie wholly in [start_s, end_s) (else the middle one).

    Windows across an edge are left out: a loud downbeat just after the edge would count.
    """
    a, b = math.ceil(start_s * ENERGY_HZ - 1e-6), math.floor(end_s * ENERGY_HZ + 1e-6)
    if b <= a:
        a = min(int((start_s + end_s) / 2 * ENERGY_HZ), len(energy) - 1)
        b = a + 1
    part = energy[a:b]
    return float(part.mean()) if part.size else 0.0


def _sections(features: _Features, downbeats: list[float], duration: float,
              energy: np.ndarray) -> list[SongSection]:
    starts = list(downbeats) if len(downbeats) >= 2 else \
        [float(t) for t in np.arange(0.0, duration - 1.0, 2.0)]
    starts = [0.0, *[t for t in starts[1:] if 0 < t < duration]]
    units = _unit_features(features, starts)
    fewest = 2 if duration >= TWO_SECTIONS_FROM_S and len(starts) >= 2 else 1
    k = min(max(math.ceil(len(starts) / UNITS_PER_SEGMENT), fewest), len(starts))
    firsts = _segments(_smoothed(units), k)
    groups = _groups([units[:, a:b].mean(axis=1) for a, b in
                      zip(firsts, [*firsts[1:], units.shape[1]], strict=True)])
    keep = [i for i in range(len(firsts)) if i == 0 or groups[i] != groups[i - 1]]
    if len(keep) >= fewest:  # neighbours that sound alike are one section
        firsts, groups = [firsts[i] for i in keep], _relettered([groups[i] for i in keep])
    bounds = [starts[i] for i in firsts] + [duration]
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    energies = [_span_energy(energy, a, b) for a, b in spans]
    labels = _labels(groups, energies)
    return [SongSection(label=label, group=group, start_s=round(a, 4), end_s=round(b, 4),
                        energy=round(e, 4))
            for label, group, (a, b), e in zip(labels, groups, spans, energies, strict=True)]


def _relettered(groups: list[str]) -> list[str]:
    letters: dict[str, str] = {}
    return [letters.setdefault(g, _letter(len(letters))) for g in groups]


def _unit_features(features: _Features, starts: list[float]) -> np.ndarray:
    """Per bar (or block): mean chroma and MFCC, z-scored (with a floor under the spread),
    each family weighted equally."""
    # The first and last frames see the zero padding of the centred STFT: left out.
    padded = N_FFT // (2 * HOP)
    lo, hi = min(padded, features.frames - 1), max(features.frames - padded, 1)
    edges = [int(np.clip(round(t * ANALYSIS_RATE_HZ / HOP), lo, hi - 1)) for t in starts[1:]]
    spans = list(zip([lo, *edges], [*edges, hi], strict=True))
    rows = []
    for family, floor in ((features.chroma, CHROMA_FLOOR), (features.mfcc, MFCC_FLOOR)):
        means = np.stack([family[:, a:max(b, a + 1)].mean(axis=1) for a, b in spans], axis=1)
        spread = np.maximum(means.std(axis=1, keepdims=True), floor)
        z = (means - means.mean(axis=1, keepdims=True)) / spread
        rows.append(z / math.sqrt(family.shape[0]))
    return np.concatenate(rows, axis=0)


def _smoothed(units: np.ndarray) -> np.ndarray:
    """Each unit averaged with its neighbours over 4 bars (weights 1/2, 1, 1, 1, 1/2).

    A section whose chords change from bar to bar (a 2- or 4-bar progression) becomes
    uniform, and a change between sections becomes a ramp whose middle is the boundary.
    """
    weights = np.asarray(SMOOTHING_WEIGHTS)
    count, half = units.shape[1], len(weights) // 2
    total = np.convolve(np.ones(count), weights)[half:half + count]
    return np.stack([np.convolve(row, weights)[half:half + count] / total for row in units])


def _segments(units: np.ndarray, k: int) -> list[int]:
    """First unit of each of k contiguous segments with the least total squared deviation.

    The optimal piecewise-constant segmentation, by dynamic programming over prefix sums.
    Segments are at least MIN_SEGMENT_UNITS long (the first and last at least MIN_EDGE_UNITS)
    when there are enough units: shorter ones would catch the ramps smoothing makes.
    """
    count = units.shape[1]
    shortest = max(1, min(MIN_SEGMENT_UNITS, count // k))
    data = units.T.astype(np.float64)
    s1 = np.vstack([np.zeros(data.shape[1]), np.cumsum(data, axis=0)])
    s2 = np.concatenate([[0.0], np.cumsum(np.sum(data ** 2, axis=1))])

    def costs(end: int) -> np.ndarray:
        """Cost of a segment [start, end) for every start (inf when too short)."""
        starts = np.arange(end + 1)
        length = np.maximum(end - starts, 1)
        spread = s2[end] - s2[starts] - np.sum((s1[end] - s1[starts]) ** 2, axis=1) / length
        edge = (starts == 0) | (end == count)
        return np.where(end - starts >= np.where(edge, min(shortest, MIN_EDGE_UNITS), shortest),
                        spread, np.inf)

    table = np.full((k + 1, count + 1), np.inf)
    back = np.zeros((k + 1, count + 1), dtype=int)
    table[0, 0] = 0.0
    for end in range(1, count + 1):
        segment = costs(end)
        for m in range(1, k + 1):
            total = table[m - 1, :end + 1] + segment
            back[m, end] = int(np.argmin(total))
            table[m, end] = total[back[m, end]]
    firsts, end = [], count
    for m in range(k, 0, -1):
        end = back[m, end]
        firsts.append(end)
    return firsts[::-1]


def _groups(means: list[np.ndarray]) -> list[str]:
    """Group letters: sections closer than SAME_GROUP_DISTANCE, or than half the median
    pairwise distance (with three sections or more), share one (transitively)."""
    n = len(means)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    if n >= 2:
        distance = np.array([[float(np.linalg.norm(a - b)) for b in means] for a in means])
        relative = 0.5 * float(np.median(distance[np.triu_indices(n, 1)])) if n >= 3 else 0.0
        threshold = max(relative, SAME_GROUP_DISTANCE)
        for i in range(n):
            for j in range(i + 1, n):
                if distance[i, j] < threshold:
                    parent[root(j)] = root(i)
    letters: dict[int, str] = {}
    return [letters.setdefault(root(i), _letter(len(letters))) for i in range(n)]


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"Z{index - 25}"


def _labels(groups: list[str], energies: list[float]) -> list[str]:
    n = len(groups)
    labels = [""] * n
    loudest = max(energies)
    quiet = [e < QUIET_RATIO * loudest for e in energies]
    if n >= 2 and quiet[0]:
        labels[0] = "intro"
    if n >= 2 and quiet[-1] and (n >= 3 or not labels[0]):
        labels[-1] = "outro"
    body = [i for i in range(n) if not labels[i]]
    names = _body_names([groups[i] for i in body], [energies[i] for i in body])
    for i in body:
        labels[i] = names[groups[i]]
    return labels


def _body_names(groups: list[str], energies: list[float]) -> dict[str, str]:
    """Names for the groups of the sections between intro and outro (in order)."""
    order = list(dict.fromkeys(groups))
    count = {g: groups.count(g) for g in order}
    level = {g: float(np.mean([e for h, e in zip(groups, energies, strict=True) if h == g]))
             for g in order}
    if len(order) == 1:
        return {order[0]: "main"}
    repeated = [g for g in order if count[g] > 1]
    chorus = max(repeated or order, key=lambda g: level[g])
    names = {chorus: "chorus"}
    rest = [g for g in order if g != chorus]
    verse = max(rest, key=lambda g: (count[g], -order.index(g)))
    names[verse] = "verse"
    for g in rest:
        if g == verse:
            continue
        before_chorus = all(i + 1 < len(groups) and groups[i + 1] == chorus
                            for i, h in enumerate(groups) if h == g)
        names[g] = "bridge" if count[g] == 1 else \
            "pre-chorus" if before_chorus else f"part {g}"
    return names


def _loud_sections(sections: list[SongSection]) -> list[SongSection]:
    median = float(np.median([s.energy for s in sections]))
    return [s.model_copy() for s in sections if s.energy >= median]


# -- cuts -------------------------------------------------------------------------------------


def choose_cuts(analysis: SongAnalysis, *, min_shot_s: float = 1.0,
                max_shot_s: float = 8.0) -> list[float]:
    """Candidate cut times for the planner, every one on a beat.

    Rules:
        - every section start is a cut;
        - per bar, the step between cuts follows the bar's level relative to the loudest bar
          (mean of the energy curve over the bar, in dB): at or above -3 dB every beat, -6 dB
          every 2 beats, -12 dB every bar, quieter every 2 bars (counted from the section
          start), see DENSITY_STEPS;
        - shots are at least `min_shot_s` long (less MIN_SHOT_TOLERANCE_S, 25 ms, for beat
          tracking jitter): candidates are kept in order of importance (section starts,
          downbeats, mid-bar beats, other beats; each from the start of the song) while they
          are far enough from every cut kept before;
        - a gap longer than `max_shot_s` gets extra cuts, on the beats nearest to an even split;
          only a gap with no usable beat (a song without a steady beat) is split off the beat.

    Args:
        analysis: the song's analysis.
        min_shot_s: shortest shot, in seconds (> 0).
        max_shot_s: longest shot, in seconds (at least 2 x min_shot_s).

    Returns:
        Sorted cut times strictly inside (0, duration_s).

    Raises:
        KantokuError: INVALID_REQUEST (CUTS_INVALID) for unusable shot lengths.
    """
    if not (min_shot_s > 0 and max_shot_s >= 2 * min_shot_s):
        raise invalid(f"min_shot_s={min_shot_s}, max_shot_s={max_shot_s}; pass min_shot_s > 0 "
                      "and max_shot_s >= 2 x min_shot_s", reason="CUTS_INVALID")
    duration = analysis.duration_s
    kept = [0.0, duration]
    for time in _candidates(analysis):
        _keep_if_clear(kept, time, min_shot_s - MIN_SHOT_TOLERANCE_S)
    cuts = _fill_gaps(kept, analysis.beats_s, min_shot_s, max_shot_s)
    return [t for t in cuts if 0 < t < duration]


def _candidates(analysis: SongAnalysis) -> list[float]:
    """Candidate cuts in order of importance (see `choose_cuts`)."""
    beats, bars = analysis.beats_s, analysis.bars
    energy = np.asarray(analysis.energy)
    levels = [_span_energy(energy, a, b) for a, b in bars]
    loudest = max(levels, default=0.0)
    section_starts = [s.start_s for s in analysis.sections]
    tiers: list[list[float]] = [section_starts[1:], [], [], []]
    bar_in_section, section = 0, 0
    for index, ((start, end), level) in enumerate(zip(bars, levels, strict=True)):
        now = bisect.bisect_right(section_starts, start + 1e-6) - 1
        bar_in_section = bar_in_section + 1 if now == section and index else 0
        section = now
        first = 0 if index == 0 else bisect.bisect_left(beats, start - 1e-6)
        in_bar = beats[first:bisect.bisect_left(beats, end - 1e-6)]  # bar 0 takes the pickup
        step = _step(level, loudest)
        if step > BEATS_PER_BAR:
            if bar_in_section % (step // BEATS_PER_BAR) == 0:
                tiers[1].append(start)
            continue
        downbeat = bisect.bisect_left(in_bar, start - 1e-6)
        for i, time in enumerate(in_bar):
            offset = i - downbeat
            if offset % step == 0:
                tiers[1 if offset == 0 else 2 if offset % 2 == 0 else 3].append(time)
    return [t for tier in tiers for t in tier]


def _step(level: float, loudest: float) -> int:
    if loudest <= 0 or level <= 0:
        return SPARSEST_STEP
    db = 20 * math.log10(level / loudest)
    return next((step for threshold, step in DENSITY_STEPS if db >= threshold), SPARSEST_STEP)


def _keep_if_clear(kept: list[float], time: float, min_gap: float) -> bool:
    """Insert `time` into the sorted `kept` when it is at least min_gap from its neighbours."""
    i = bisect.bisect_left(kept, time)
    if (i > 0 and time - kept[i - 1] < min_gap) or (i < len(kept) and kept[i] - time < min_gap):
        return False
    kept.insert(i, time)
    return True


def _fill_gaps(kept: list[float], beats: list[float], min_shot_s: float,
               max_shot_s: float) -> list[float]:
    out = [kept[0]]
    min_gap = min_shot_s - MIN_SHOT_TOLERANCE_S
    for end in kept[1:]:
        while end - out[-1] > max_shot_s + 1e-9:
            start = out[-1]
            target = start + (end - start) / math.ceil((end - start) / max_shot_s)
            usable = [t for t in beats
                      if start + min_gap <= t <= start + max_shot_s and t <= end - min_gap]
            out.append(min(usable, key=lambda t: abs(t - target)) if usable else target)
        out.append(end)
    return out


def snap_to_beats(times: Sequence[float], analysis: SongAnalysis) -> list[float]:
    """Each time moved to the nearest beat (the LLM planner's cuts are snapped with this).

    Args:
        times: cut times in seconds, in any order.
        analysis: the song's analysis.

    Returns:
        One time per input, in the same order; times may repeat (the caller merges them).
        Without beats the times come back unchanged.
    """
    beats = analysis.beats_s
    if not beats:
        return [float(t) for t in times]
    out = []
    for time in times:
        i = bisect.bisect_left(beats, time)
        near = [beats[j] for j in (i - 1, i) if 0 <= j < len(beats)]
        out.append(min(near, key=lambda b: abs(b - time)))
    return out


def sections_for_plan(analysis: SongAnalysis) -> list[Section]:
    """The song's sections as the heuristic planner takes them (label and start)."""
    return [Section(s.label, s.start_s) for s in analysis.sections]
