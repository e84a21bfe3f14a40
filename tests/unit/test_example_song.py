"""The example song, its lyrics and brief: deterministic, exact lengths, never drifting."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from kantoku.planner.planning.brief import load_brief

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RATE = 44100


@pytest.fixture(scope="module")
def song() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_song", EXAMPLES / "make_song.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lrc_times(text: str) -> list[float]:
    return [int(m) * 60 + float(s) for m, s in re.findall(r"\[(\d+):(\d+(?:\.\d+)?)\]", text)]


def test_synthesis_is_deterministic(song: ModuleType) -> None:
    first = song.synthesize(15.0)
    song._tone.cache_clear()  # the second render computes every note afresh
    second = song.synthesize(15.0)
    assert first.dtype == np.float32
    assert np.array_equal(first, second)


@pytest.mark.parametrize("seconds", [15, 30, 60, 120])
def test_length_is_exact_and_nothing_clips(song: ModuleType, seconds: int) -> None:
    samples = song.synthesize(float(seconds))
    assert samples.shape == (seconds * RATE, 2)
    assert np.isfinite(samples).all()
    assert float(np.abs(samples).max()) < 1.0
    assert float(np.abs(samples[-10:]).max()) < 1e-3, "the song ends in a fade"
    sections = song.SECTIONS(float(seconds))
    assert sections[0][1] == 0 and sections[-1][2] == pytest.approx(seconds)
    assert all(a[2] == pytest.approx(b[1]) for a, b in zip(sections, sections[1:], strict=False))
    labels = [label for label, _, _ in sections]
    assert labels[0] == "intro" and {"verse", "chorus"} <= set(labels)
    assert ("outro" in labels) == (seconds >= 30)


def test_checked_in_song_is_what_the_generator_makes(song: ModuleType, tmp_path: Path) -> None:
    fresh = tmp_path / "song.wav"
    song.write_wav(fresh, song.synthesize(30.0))
    digest = hashlib.sha256(fresh.read_bytes()).hexdigest()
    assert hashlib.sha256((EXAMPLES / "song.wav").read_bytes()).hexdigest() == digest, (
        "examples/song.wav is stale: run `python examples/make_song.py --seconds 30 "
        "--out examples/song.wav`")


def test_lyrics_lie_within_the_song_on_the_grid(song: ModuleType) -> None:
    text = (EXAMPLES / "song.lrc").read_text(encoding="utf-8")
    assert "[ar:kantoku project]" in text and "[ti:" in text
    times = _lrc_times(text)
    assert len(times) >= 5
    sung = [(a, b) for label, a, b in song.SECTIONS(30.0) if label != "intro"]
    for t in times:
        assert 0 <= t < 30.0
        assert any(a <= t < b for a, b in sung), f"{t} s is not in a sung section"
        assert (t / (song.BEAT_S / 2)) == pytest.approx(round(t / (song.BEAT_S / 2))), t
    assert any(len(_lrc_times(line)) == 2 for line in text.splitlines())


def test_example_brief_validates() -> None:
    brief = load_brief(EXAMPLES / "brief.yaml")
    assert brief.song is not None and brief.song.holder == "kantoku project"
    assert brief.song.license == "CC0-1.0" and brief.song.commercial_use
    assert len(brief.characters) == 2 and brief.language == "ja"


def test_project_reads_the_lyrics_without_warnings() -> None:
    lyrics = pytest.importorskip("kantoku.planner.music.lyrics")
    lines, warnings = lyrics.load_lyrics(EXAMPLES / "song.lrc", duration_s=30.0)
    assert warnings == []
    assert [line.start_s for line in lines] == [8.5, 12.25, 16.0, 20.0, 24.0]
    assert lines[2].text == lines[4].text
