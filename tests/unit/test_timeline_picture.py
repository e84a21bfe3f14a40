"""The timeline picture: shots and cuts against the waveform, beats, sections and lyrics."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kantoku.planner.finish.timeline_picture import BACKGROUND, draw_timeline, wave_envelope, x_of
from kantoku.planner.planning.plan import Plan, Shot

RATE = 8000
CUTS = [0.0, 2.0, 3.5, 6.0, 8.0]


def _plan() -> Plan:
    sizes = ["wide", "close_up", "medium_close_up", "extreme_wide"]
    shots = [Shot(id=f"s{i + 1:03d}", start_s=a, end_s=b, shot_size=sizes[i],  # type: ignore[arg-type]
                  section="verse" if a < 4 else "chorus")
             for i, (a, b) in enumerate(zip(CUTS, CUTS[1:], strict=False))]
    return Plan(title="Test 光", duration_s=8.0, width_px=720, height_px=1280, fps=30, shots=shots)


def _song() -> np.ndarray:
    t = np.arange(int(8.0 * RATE)) / RATE
    mono = np.sin(2 * np.pi * 220 * t) * (0.2 + 0.8 * (t % 0.5 < 0.1))
    return np.stack([mono, 0.5 * mono], axis=1).astype(np.float32)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _cut_differs(pixels: np.ndarray, width: int) -> None:
    """At each cut, rows that are background mid-shot are not background on the cut line."""
    background = np.all(pixels == BACKGROUND, axis=2)
    for cut in CUTS[1:-1]:
        beside = background[:, x_of(cut + 0.3, 8.0, width)]
        on_cut = background[:, x_of(cut, 8.0, width)]
        assert (beside & ~on_cut).sum() >= 5, f"no cut line drawn at {cut} s"


@pytest.mark.parametrize("with_audio", [True, False])
def test_draws_plan_with_and_without_audio(tmp_path: Path, with_audio: bool) -> None:
    out = tmp_path / "pictures" / "timeline.png"
    started = time.perf_counter()
    draw_timeline(_plan(), out, audio=_song() if with_audio else None, sample_rate_hz=RATE,
                  beats_s=[k * 0.5 for k in range(16)] if with_audio else [],
                  downbeats_s=[k * 2.0 for k in range(4)] if with_audio else [],
                  sections=[("verse", 0.0, 4.0), ("chorus", 4.0, 8.0)] if with_audio else [],
                  lyrics=[(0.5, 3.0, "窓をあけて"), (3.0, 6.0, "Running\nthrough")],
                  width_px=900)
    assert time.perf_counter() - started < 5
    pixels = _pixels(out)
    assert pixels.shape[1] == 900 and pixels.shape[0] > 100
    _cut_differs(pixels, 900)
    if with_audio:  # the waveform band makes the picture taller
        assert pixels.shape[0] > 200


def test_width_is_as_asked(tmp_path: Path) -> None:
    out = tmp_path / "default.png"
    draw_timeline(_plan(), out, audio=_song(), sample_rate_hz=RATE, beats_s=[], downbeats_s=[],
                  sections=[])
    assert _pixels(out).shape[1] == 1600
    for width in (400, 2400):
        draw_timeline(_plan(), out, audio=_song(), sample_rate_hz=RATE, beats_s=[0.5],
                      downbeats_s=[0.0], sections=[], width_px=width)
        assert _pixels(out).shape[1] == width


def test_cut_line_is_drawn_through_the_waveform(tmp_path: Path) -> None:
    out = tmp_path / "silent.png"
    silence = np.zeros((int(8.0 * RATE), 2), dtype=np.float32)
    draw_timeline(_plan(), out, audio=silence, sample_rate_hz=RATE, beats_s=[], downbeats_s=[],
                  sections=[])
    pixels = _pixels(out)
    column = pixels[:, x_of(CUTS[1], 8.0, 1600)]
    mid = pixels[:, x_of(CUTS[1] + 0.7, 8.0, 1600)]
    red = np.all(column == (214, 39, 40), axis=1)
    assert red.sum() > 100, "the cut runs from the sections through the waveform to the shots"
    assert not np.all(mid == (214, 39, 40), axis=1).any()


def test_wave_envelope_per_column() -> None:
    audio = np.concatenate([np.full(100, 0.5), np.full(100, -0.25)])
    lows, highs, rms = wave_envelope(audio, 100, 3.0, 3)
    assert highs.tolist() == [0.5, -0.25, 0.0]
    assert lows.tolist() == [0.5, -0.25, 0.0]
    assert rms[:2] == pytest.approx([0.5, 0.25])
