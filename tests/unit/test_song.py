"""Song analysis on songs synthesized here, whose beats, bars and sections are known exactly."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from kantoku.planner.music.song import (
    MAX_SONG_S,
    SongAnalysis,
    SongSection,
    analyze_song,
    choose_cuts,
    sections_for_plan,
    snap_to_beats,
)
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.heuristic import Section, heuristic_plan
from kantoku.planner.planning.plan import plan_problems
from kantoku.services._core.errors import Category, KantokuError

RATE = 22_050
BPM = 120.0
BEAT_S = 60.0 / BPM
FIRST_BEAT_S = 0.25
#: The loud part (other chords, a brighter timbre) starts on the downbeat of bar 5.
CHANGE_S = FIRST_BEAT_S + 4 * 4 * BEAT_S
SONG_S = 24.0
FRAME_S = 1 / 30  # one video frame at 30 fps
C_MAJOR = (261.63, 329.63, 392.0)
A_MINOR, F_MAJOR = (220.0, 261.63, 329.63), (174.61, 220.0, 261.63)


def synthesize(seconds: float = SONG_S, rate: int = RATE) -> np.ndarray:
    """120 BPM: a kick and click on every beat (downbeats louder), a quiet pure C-major pad
    until CHANGE_S, then Am / F chords (a bar each) with five harmonics, four times louder."""
    t = np.arange(int(round(seconds * rate))) / rate
    song = np.zeros_like(t)
    quiet = t < CHANGE_S
    song[quiet] = 0.05 * sum(np.sin(2 * np.pi * f * t[quiet]) for f in C_MAJOR)
    for bar, start in enumerate(np.arange(CHANGE_S, seconds, 4 * BEAT_S)):
        part = (t >= start) & (t < start + 4 * BEAT_S)
        for f in (A_MINOR, F_MAJOR)[bar % 2]:
            song[part] += sum(0.08 / h * np.sin(2 * np.pi * f * h * t[part]) for h in range(1, 6))
    kt = np.arange(int(0.15 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 * kt + 2 * (1 - np.exp(-kt * 30)))) * np.exp(-kt * 25)
    click = np.random.default_rng(0).standard_normal(int(0.004 * rate)) * 0.5
    for index, beat in enumerate(true_beats(seconds)):
        gain = (1.0 if index % 4 == 0 else 0.45) * (0.25 if beat < CHANGE_S else 1.0)
        at = int(round(beat * rate))
        for hit in (kick, click):
            piece = hit[:len(song) - at] * gain
            song[at:at + len(piece)] += piece
    return (song / np.abs(song).max() * 0.9).astype(np.float32)


def true_beats(seconds: float = SONG_S) -> np.ndarray:
    return np.arange(FIRST_BEAT_S, seconds - 0.2, BEAT_S)


def write_ogg(path: Path, samples: np.ndarray, rate: int) -> None:
    """In blocks: libsndfile's Vorbis encoder can crash on one very large write."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with sf.SoundFile(path, "w", rate, channels, format="OGG", subtype="VORBIS") as out:
        for start in range(0, len(samples), 1 << 14):
            out.write(samples[start:start + (1 << 14)])


def write_m4a(path: Path, samples: np.ndarray, rate: int) -> None:
    """AAC in MP4 with PyAV: libsndfile cannot read it, so the FFmpeg fallback must."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt",
                                               layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("songs")
    mono = synthesize()
    paths = {"wav": folder / "song.wav", "flac": folder / "song.flac",
             "ogg": folder / "song.ogg"}
    sf.write(paths["wav"], mono, RATE, subtype="PCM_16")
    stereo = synthesize(rate=44_100)
    sf.write(paths["flac"], np.stack([stereo, 0.8 * stereo], axis=1), 44_100)
    write_ogg(paths["ogg"], mono, RATE)
    if "MP3" in sf.available_formats():
        paths["mp3"] = folder / "song.mp3"
        sf.write(paths["mp3"], np.stack([stereo, stereo], axis=1), 44_100, format="MP3")
    write_m4a(folder / "song.m4a", mono, RATE)
    paths["m4a"] = folder / "song.m4a"
    return paths


@pytest.fixture(scope="module")
def analysis(songs: dict[str, Path]) -> SongAnalysis:
    return analyze_song(songs["wav"])


def nearest(times: np.ndarray | list[float], t: float) -> float:
    values = np.asarray(times)
    return float(values[np.argmin(np.abs(values - t))])


def test_tempo_beats_and_downbeats(analysis: SongAnalysis) -> None:
    assert analysis.tempo_bpm == pytest.approx(BPM, rel=0.02)
    beats = np.asarray(analysis.beats_s)
    assert len(beats) >= len(true_beats()) - 2
    assert np.all(np.abs(np.diff(beats) - BEAT_S) < 0.03)
    for beat in beats:
        assert abs(nearest(true_beats(), beat) - beat) < FRAME_S, beat
    downbeats = np.asarray(analysis.downbeats_s)
    accents = true_beats()[::4]
    assert len(downbeats) >= len(accents) - 1
    assert np.all(np.abs(np.diff(downbeats) - 4 * BEAT_S) < 0.05)
    for downbeat in downbeats:
        assert abs(nearest(accents, downbeat) - downbeat) < FRAME_S, downbeat
    assert [a for a, _ in analysis.bars] == analysis.downbeats_s
    assert all(b == pytest.approx(c) for (_, b), (c, _) in
               zip(analysis.bars, analysis.bars[1:], strict=False))


def test_sections_follow_the_change_and_the_energy(analysis: SongAnalysis) -> None:
    sections = analysis.sections
    assert len(sections) >= 2
    assert sections[0].start_s == 0 and sections[-1].end_s == pytest.approx(SONG_S)
    assert all(a.end_s == b.start_s for a, b in zip(sections, sections[1:], strict=False))
    starts = [s.start_s for s in sections[1:]]
    assert all(start in analysis.downbeats_s for start in starts)
    assert any(abs(start - CHANGE_S) <= 4 * BEAT_S for start in starts)
    assert sections[0].label == "intro"
    assert sections[-1].energy > 1.5 * sections[0].energy
    assert sections[-1] in analysis.loud_sections and sections[0] not in analysis.loud_sections
    energy = np.asarray(analysis.energy)
    assert analysis.energy_hz == 10 and len(energy) == math.ceil(SONG_S * 10)
    assert energy.min() >= 0 and energy.max() == pytest.approx(1.0)
    assert energy[100:].mean() > 1.5 * energy[:80].mean()


def test_duration_is_exact_and_the_analysis_is_json_ready(songs: dict[str, Path],
                                                          analysis: SongAnalysis) -> None:
    assert analysis.duration_s == len(synthesize()) / RATE == SONG_S
    assert (analysis.sample_rate_hz, analysis.channels) == (RATE, 1)
    assert analysis.sha256 == hashlib.sha256(songs["wav"].read_bytes()).hexdigest()
    document = json.loads(analysis.model_dump_json())
    assert SongAnalysis.model_validate(document) == analysis
    assert analyze_song(songs["wav"]) == analysis  # deterministic


@pytest.mark.parametrize("kind", ["flac", "ogg", "mp3", "m4a"])
def test_other_formats_give_the_same_song(songs: dict[str, Path], kind: str) -> None:
    if kind not in songs:
        pytest.skip("this libsndfile cannot write MP3")
    result = analyze_song(songs[kind])
    if kind == "flac":
        assert (result.sample_rate_hz, result.channels) == (44_100, 2)
        assert result.duration_s == SONG_S
    elif kind == "ogg":
        assert result.duration_s == pytest.approx(SONG_S, abs=1e-3)
    else:  # encoder delay and padding
        assert result.duration_s == pytest.approx(SONG_S, abs=0.1)
    assert result.tempo_bpm == pytest.approx(BPM, rel=0.02)
    assert len(result.sections) >= 2


def test_mp3_decodes_through_ffmpeg_too(songs: dict[str, Path],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if "mp3" not in songs:
        pytest.skip("this libsndfile cannot write MP3")

    def refuse(*_: object, **__: object) -> None:
        raise sf.LibsndfileError(0, "refused by the test")

    monkeypatch.setattr(sf, "info", refuse)
    result = analyze_song(songs["mp3"])
    assert result.duration_s == pytest.approx(SONG_S, abs=0.1)
    assert result.tempo_bpm == pytest.approx(BPM, rel=0.02)


def test_cuts_are_on_beats_denser_when_loud_and_within_shot_limits(
        analysis: SongAnalysis) -> None:
    cuts = choose_cuts(analysis)
    assert cuts == sorted(cuts) and cuts[0] > 0 and cuts[-1] < analysis.duration_s
    for cut in cuts:
        assert abs(nearest(analysis.beats_s, cut) - cut) <= FRAME_S
    edges = [0.0, *cuts, analysis.duration_s]
    gaps = np.diff(edges)
    assert gaps.min() >= 1.0 - 0.025 and gaps.max() <= 8.0
    for section in analysis.sections[1:]:
        assert section.start_s in cuts
    quiet = sum(1 for c in cuts if c < CHANGE_S - 0.1) / CHANGE_S
    loud = sum(1 for c in cuts if c > CHANGE_S + 0.1) / (SONG_S - CHANGE_S)
    assert loud > 1.5 * quiet


def test_cut_limits_are_kept_for_other_shot_lengths(analysis: SongAnalysis) -> None:
    cuts = choose_cuts(analysis, min_shot_s=0.5, max_shot_s=1.5)
    gaps = np.diff([0.0, *cuts, analysis.duration_s])
    assert gaps.min() >= 0.5 - 0.025 and gaps.max() <= 1.5
    assert len(cuts) > len(choose_cuts(analysis))
    with pytest.raises(KantokuError) as error:
        choose_cuts(analysis, min_shot_s=2.0, max_shot_s=3.0)
    assert error.value.reason == "CUTS_INVALID"


def _grid_song(duration: float, beats: list[float], energy: float) -> SongAnalysis:
    downbeats = beats[::4]
    bars = list(zip(downbeats, [*downbeats[1:], duration][:len(downbeats)], strict=True))
    section = SongSection(label="main", group="A", start_s=0.0, end_s=duration, energy=energy)
    return SongAnalysis(path="x.wav", sha256="0" * 64, duration_s=duration, sample_rate_hz=RATE,
                        channels=1, tempo_bpm=120.0 if beats else 0.0, beats_s=beats,
                        downbeats_s=downbeats, bars=bars, sections=[section],
                        energy=[energy] * int(duration * 10))


def test_long_gaps_get_extra_cuts_on_beats() -> None:
    beats = [round(0.5 * k, 4) for k in range(60)]
    song = _grid_song(30.0, beats, 0.2)
    cuts = choose_cuts(song, min_shot_s=1.0, max_shot_s=3.0)
    assert set(cuts) <= set(beats)
    assert np.diff([0.0, *cuts, 30.0]).max() <= 3.0
    beatless = choose_cuts(_grid_song(30.0, [], 0.2), min_shot_s=1.0, max_shot_s=8.0)
    assert beatless and np.diff([0.0, *beatless, 30.0]).max() <= 8.0


def test_snap_to_beats_keeps_order_and_count(analysis: SongAnalysis) -> None:
    times = [9.0, 0.0, 3.1, 3.2, 23.99, 100.0]
    snapped = snap_to_beats(times, analysis)
    assert len(snapped) == len(times)
    assert all(s in analysis.beats_s for s in snapped)
    assert snapped[0] == nearest(analysis.beats_s, 9.0)
    assert snapped[2] == snapped[3]  # duplicates stay; the caller merges them
    assert snapped[5] == analysis.beats_s[-1]
    assert snap_to_beats([1.23], _grid_song(10.0, [], 0.5)) == [1.23]


def test_sections_drive_the_heuristic_plan(analysis: SongAnalysis) -> None:
    sections = sections_for_plan(analysis)
    assert sections == [Section(s.label, s.start_s) for s in analysis.sections]
    brief = Brief(title="Song test", characters=[{"name": "Aiko"}])
    plan = heuristic_plan(brief, analysis.duration_s, sections=sections,
                          cut_times=choose_cuts(analysis))
    assert plan_problems(plan, {"Aiko"}) == []
    assert plan.shots[0].section == "intro"


def _expect_error(path: Path, reason: str, *words: str) -> KantokuError:
    with pytest.raises(KantokuError) as error:
        analyze_song(path)
    assert error.value.reason == reason
    for word in (str(path), *words):
        assert word in error.value.message
    return error.value


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    error = _expect_error(tmp_path / "nope.wav", "SONG_NOT_FOUND", "no such song file")
    assert error.category is Category.NOT_FOUND


@pytest.mark.parametrize(("name", "content"), [
    ("noise.wav", np.random.default_rng(1).bytes(50_000)),
    ("notes.mp3", b"these are my lyrics, not a song\n" * 100),
    ("empty.flac", b"")])
def test_undecodable_files_are_invalid(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    error = _expect_error(path, "SONG_UNREADABLE", "cannot decode audio",
                          "use WAV, FLAC, MP3 or OGG")
    assert error.category is Category.INVALID_REQUEST


def test_silent_songs_are_invalid(tmp_path: Path) -> None:
    sf.write(tmp_path / "zeros.wav", np.zeros(RATE * 5, np.float32), RATE)
    _expect_error(tmp_path / "zeros.wav", "SONG_SILENT", "the song is silent")
    hiss = np.random.default_rng(2).uniform(-1, 1, RATE * 5) * 10 ** (-70 / 20)
    sf.write(tmp_path / "hiss.flac", hiss.astype(np.float32), RATE)
    _expect_error(tmp_path / "hiss.flac", "SONG_SILENT", "the song is silent")
    tone = synthesize(5.0)
    sf.write(tmp_path / "cancels.wav", np.stack([tone, -tone], axis=1), RATE, subtype="FLOAT")
    _expect_error(tmp_path / "cancels.wav", "SONG_SILENT", "cancel out")


def test_a_song_without_a_beat_gets_even_cuts(tmp_path: Path) -> None:
    t = np.arange(RATE * 25) / RATE
    sf.write(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)
    result = analyze_song(tmp_path / "tone.wav")
    assert result.beats_s == [] and result.tempo_bpm == 0 and result.notes
    assert len(result.sections) >= 2 and {s.label for s in result.sections} == {"main"}
    cuts = choose_cuts(result, max_shot_s=6.0)
    assert cuts and np.diff([0.0, *cuts, result.duration_s]).max() <= 6.0


def test_songs_too_long_or_too_short_are_invalid(tmp_path: Path) -> None:
    rate = 1000  # a header that says 601 s is refused before the samples are read
    sf.write(tmp_path / "long.wav", np.full(int((MAX_SONG_S + 1) * rate), 0.1, np.float32), rate)
    _expect_error(tmp_path / "long.wav", "SONG_TOO_LONG", "601.0 s", "600 s")
    sf.write(tmp_path / "short.wav", synthesize(1.5), RATE)
    _expect_error(tmp_path / "short.wav", "SONG_TOO_SHORT", "1.50 s", "at least 2 s")
    sf.write(tmp_path / "nothing.wav", np.zeros(0, np.float32), RATE)
    _expect_error(tmp_path / "nothing.wav", "SONG_TOO_SHORT", "0.00 s")


def test_a_two_minute_song_is_analysed_quickly(tmp_path: Path,
                                               analysis: SongAnalysis) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(synthesize(), 5), RATE)  # 120 s; librosa is warm by now
    started = time.perf_counter()
    result = analyze_song(path)
    assert time.perf_counter() - started < 5.0
    assert result.duration_s == 5 * SONG_S
    assert result.tempo_bpm == pytest.approx(BPM, rel=0.02)


def test_a_corrupt_mp3_is_refused_at_intake(tmp_path: Path) -> None:
    import random

    import av

    from tests.conftest import make_song

    wav, mp3 = make_song(tmp_path / "song.wav", 20.0), tmp_path / "song.mp3"
    with av.open(str(wav)) as source, av.open(str(mp3), "w") as out:
        stream = out.add_stream("mp3", rate=44100)
        for frame in source.decode(audio=0):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    data, rng = bytearray(mp3.read_bytes()), random.Random(3)
    for _ in range(200):  # bits flipped on the way, as by a bad disk or download
        data[rng.randrange(1000, len(data))] ^= 1 << rng.randrange(8)
    mp3.write_bytes(bytes(data))
    with pytest.raises(KantokuError) as info:
        analyze_song(mp3)
    assert info.value.reason == "SONG_UNREADABLE"
    assert info.value.message.startswith(f"{mp3}: cannot decode audio")
