"""A picture of a plan against its song: shots, cuts, waveform, beats, sections and lyrics.

One PNG, time running left to right: a header, a time ruler, the song's sections as coloured
bands, the waveform (min/max per pixel column, RMS inside) with thin beat and thick downbeat
ticks, the shots as alternating blocks (id and shot size) and the lyric lines as spans. Cut lines
run from the sections down through the waveform to the shots, so a reviewer sees at a glance
whether cuts land on beats. Without a song there is no waveform and no beats; the sections then
come from the shots' own `section` labels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kantoku.planner.planning.plan import Plan, Shot
from kantoku.services._core.errors import KantokuError

Color = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
#: Maps a time in seconds to a pixel column.
_XFn = Callable[[float], int]

#: Space left and right of the time axis, in pixels.
MARGIN_PX = 16
BACKGROUND: Color = (250, 250, 247)
INK: Color = (40, 40, 46)
FAINT: Color = (150, 150, 158)
CUT: Color = (214, 39, 40)
BEAT: Color = (170, 190, 215)
DOWNBEAT: Color = (70, 100, 150)
WAVE: Color = (96, 110, 130)
WAVE_RMS: Color = (150, 165, 185)
SHOT_COLORS: tuple[Color, Color] = ((66, 110, 170), (100, 150, 205))
SECTION_COLORS: dict[str, Color] = {
    "intro": (214, 222, 235), "verse": (205, 232, 208), "pre-chorus": (236, 230, 196),
    "chorus": (250, 214, 182), "bridge": (226, 210, 236), "outro": (220, 220, 226)}
OTHER_SECTION_COLORS: tuple[Color, ...] = ((232, 224, 210), (210, 228, 232), (236, 214, 222))
SIZE_ABBREVIATIONS = {"extreme_wide": "EWS", "wide": "WS", "full": "FS", "medium": "MS",
                      "medium_close_up": "MCU", "close_up": "CU", "extreme_close_up": "ECU"}
#: Row heights in pixels, top to bottom.
HEADER_PX, RULER_PX, SECTIONS_PX, WAVE_PX, SHOTS_PX, LYRIC_LANE_PX, GAP_PX = (
    30, 26, 24, 140, 58, 22, 6)
#: Height of the beat-tick strip at the top of the waveform band.
BEAT_TICK_PX = 10


def x_of(t_s: float, duration_s: float, width_px: int) -> int:
    """The pixel column of time `t_s` on a picture `width_px` wide showing `duration_s`."""
    span = width_px - 2 * MARGIN_PX
    return MARGIN_PX + round(min(max(t_s, 0.0), duration_s) / duration_s * span)


@dataclass(frozen=True)
class _Rows:
    """Top and bottom pixel of each band; the waveform band is empty without audio or beats."""

    ruler: tuple[int, int]
    sections: tuple[int, int]
    wave: tuple[int, int]
    shots: tuple[int, int]
    lyrics: tuple[int, int]


def _rows(has_wave: bool, lyric_lanes: int) -> _Rows:
    top = HEADER_PX
    bands = []
    for height in (RULER_PX, SECTIONS_PX, WAVE_PX if has_wave else 0, SHOTS_PX,
                   lyric_lanes * LYRIC_LANE_PX):
        bands.append((top, top + height))
        top += height + (GAP_PX if height else 0)
    return _Rows(*bands)


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Font:
    """The project's CJK font when `services._core.fonts` provides it, else Pillow's default."""
    try:
        from kantoku.services._core.fonts import font
    except ImportError:
        return ImageFont.load_default(size=size)
    try:
        return font(size)
    except (KantokuError, OSError):  # the font package is missing: still draw the picture
        return ImageFont.load_default(size=size)


def draw_timeline(plan: Plan, out: Path, *, audio: np.ndarray | None, sample_rate_hz: int,
                  beats_s: Sequence[float], downbeats_s: Sequence[float],
                  sections: Sequence[tuple[str, float, float]],
                  lyrics: Sequence[tuple[float, float, str]] = (),
                  width_px: int = 1600) -> None:
    """Draw the plan's shots against the song and save the picture as PNG.

    Args:
        plan: The shot plan; its `duration_s` is the width of the time axis.
        out: Where to write the PNG (parent folders are made).
        audio: The song's samples, `(n,)` or `(n, channels)`, or None without a song.
        sample_rate_hz: Samples per second of `audio`.
        beats_s: Beat times in seconds (thin ticks).
        downbeats_s: Downbeat (bar start) times in seconds (thick ticks).
        sections: `(label, start_s, end_s)` of the song; empty to take them from the shots.
        lyrics: `(start_s, end_s, text)` per lyric line.
        width_px: Picture width; the height follows from the bands shown.
    """
    if width_px < 4 * MARGIN_PX:
        raise ValueError(f"width_px {width_px} is too small; use at least {4 * MARGIN_PX}")
    has_wave = audio is not None or bool(beats_s) or bool(downbeats_s)
    lanes = min(2, len(lyrics))
    rows = _rows(has_wave, lanes)
    height = max(rows.lyrics[1], rows.shots[1]) + GAP_PX * 2
    image = Image.new("RGB", (width_px, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    duration = plan.duration_s

    def x(t: float) -> int:
        return x_of(t, duration, width_px)

    _draw_header(draw, plan, width_px, has_audio=audio is not None)
    _draw_ruler(draw, rows.ruler, duration, width_px, x)
    _draw_sections(draw, rows.sections, list(sections) or _shot_sections(plan.shots), x)
    if has_wave:
        wave_band = (rows.wave[0] + BEAT_TICK_PX + 2, rows.wave[1])
        _draw_beats(draw, rows.wave, beats_s, downbeats_s, x, strip_only=False)
        if audio is not None:
            _draw_wave(draw, wave_band, audio, sample_rate_hz, duration, width_px)
        _draw_beats(draw, rows.wave, beats_s, downbeats_s, x, strip_only=True)
    _draw_shots(draw, rows.shots, plan.shots, x)
    _draw_cuts(draw, (rows.sections[0], rows.shots[1]), plan.shots, x)
    _draw_lyrics(draw, rows.lyrics, lyrics, x)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")


def _draw_header(draw: ImageDraw.ImageDraw, plan: Plan, width_px: int, *, has_audio: bool) -> None:
    song = "" if has_audio else " · no song"
    text = (f"{plan.title} — {plan.duration_s:.2f} s · {len(plan.shots)} shots · "
            f"{plan.width_px}x{plan.height_px} @ {plan.fps} fps · planner: {plan.planner}{song}")
    draw.text((MARGIN_PX, 6), _fit(draw, text, width_px - 2 * MARGIN_PX - 330, _font(15)),
              fill=INK, font=_font(15))
    legend_x = width_px - MARGIN_PX - 320
    for color, thick, label in ((CUT, 3, "cut"), (DOWNBEAT, 3, "downbeat"), (BEAT, 1, "beat")):
        draw.line([(legend_x, 9), (legend_x, 23)], fill=color, width=thick)
        draw.text((legend_x + 7, 8), label, fill=FAINT, font=_font(12))
        legend_x += 22 + int(draw.textlength(label, font=_font(12)))


def _ruler_step(duration_s: float, width_px: int) -> float:
    """The smallest 'nice' labelled step that keeps labels about 60 px apart."""
    px_per_s = (width_px - 2 * MARGIN_PX) / duration_s
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300):
        if step * px_per_s >= 60:
            return step
    return 600.0


def _clock(t: float, duration_s: float) -> str:
    if duration_s < 60:
        return f"{t:g}s"
    return f"{int(t) // 60}:{int(t) % 60:02d}"


def _draw_ruler(draw: ImageDraw.ImageDraw, band: tuple[int, int], duration_s: float,
                width_px: int, x: _XFn) -> None:
    top, bottom = band
    draw.line([(x(0), bottom - 1), (x(duration_s), bottom - 1)], fill=FAINT)
    step = _ruler_step(duration_s, width_px)
    minor = step / 5 if step >= 5 else step / 2
    for k in range(int(duration_s / minor + 1e-9) + 1):
        t = k * minor
        labelled = abs(t / step - round(t / step)) < 1e-6
        draw.line([(x(t), bottom - (10 if labelled else 5)), (x(t), bottom - 1)], fill=FAINT)
        if labelled:
            label = _clock(t, duration_s)
            room = width_px - x(t) - 3 - draw.textlength(label, font=_font(12))
            left = x(t) + 3 if room >= 0 else x(t) - 3 - draw.textlength(label, font=_font(12))
            draw.text((left, top + 2), label, fill=INK, font=_font(12))


def _shot_sections(shots: Sequence[Shot]) -> list[tuple[str, float, float]]:
    """Runs of consecutive shots with the same non-empty `section` label."""
    runs: list[tuple[str, float, float]] = []
    for shot in shots:
        if runs and runs[-1][0] == shot.section and abs(runs[-1][2] - shot.start_s) < 1e-6:
            runs[-1] = (shot.section, runs[-1][1], shot.end_s)
        elif shot.section:
            runs.append((shot.section, shot.start_s, shot.end_s))
    return runs


def _section_color(label: str, index: int) -> Color:
    base = label.lower().rstrip("0123456789 ").replace("_", "-")
    return SECTION_COLORS.get(base, OTHER_SECTION_COLORS[index % len(OTHER_SECTION_COLORS)])


def _draw_sections(draw: ImageDraw.ImageDraw, band: tuple[int, int],
                   sections: Sequence[tuple[str, float, float]], x: _XFn) -> None:
    top, bottom = band
    for index, (label, start, end) in enumerate(sections):
        left, right = x(start), x(end)
        draw.rectangle([left, top, max(left, right - 1), bottom], fill=_section_color(label, index))
        draw.text((left + 4, top + 4), _fit(draw, label, right - left - 8, _font(13)), fill=INK,
                  font=_font(13))


def _draw_beats(draw: ImageDraw.ImageDraw, band: tuple[int, int], beats_s: Sequence[float],
                downbeats_s: Sequence[float], x: _XFn, *, strip_only: bool) -> None:
    """Beat (thin) and downbeat (thick) ticks: faint full-height lines behind the waveform
    (`strip_only=False`), or solid ticks in the strip at the top of the band."""
    top, bottom = band
    for times, color, width, tick in ((beats_s, BEAT, 1, BEAT_TICK_PX // 2),
                                      (downbeats_s, DOWNBEAT, 3, BEAT_TICK_PX)):
        for t in times:
            if strip_only:
                draw.line([(x(t), top), (x(t), top + tick)], fill=DOWNBEAT, width=width)
            else:
                draw.line([(x(t), top + BEAT_TICK_PX + 2), (x(t), bottom)], fill=color,
                          width=width)


def wave_envelope(audio: np.ndarray, sample_rate_hz: int, duration_s: float,
                  columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min, max and RMS of the mono mix per pixel column over the first `duration_s` seconds.

    Columns past the end of the audio are zero. Each array has `columns` values.
    """
    mono = np.asarray(audio, dtype=np.float64)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono.reshape(-1)
    edges = np.linspace(0, duration_s * sample_rate_hz, columns + 1).astype(np.int64)
    lows, highs, rms = (np.zeros(columns) for _ in range(3))
    used = edges[:-1] < len(mono)
    starts = edges[:-1][used]
    if mono.size and starts.size:
        lows[used] = np.minimum.reduceat(mono, starts)
        highs[used] = np.maximum.reduceat(mono, starts)
        counts = np.diff(np.append(starts, min(edges[-1], len(mono)))).clip(min=1)
        rms[used] = np.sqrt(np.add.reduceat(mono**2, starts) / counts)
    return lows, highs, rms


def _draw_wave(draw: ImageDraw.ImageDraw, band: tuple[int, int], audio: np.ndarray,
               sample_rate_hz: int, duration_s: float, width_px: int) -> None:
    top, bottom = band
    columns = width_px - 2 * MARGIN_PX
    lows, highs, rms = wave_envelope(audio, sample_rate_hz, duration_s, columns)
    scale = max(float(np.abs(lows).max(initial=0)), float(np.abs(highs).max(initial=0)), 1e-9)
    middle, half = (top + bottom) / 2, (bottom - top) / 2 - 2
    for column in range(columns):
        px = MARGIN_PX + column
        draw.line([(px, round(middle - highs[column] / scale * half)),
                   (px, round(middle - lows[column] / scale * half))], fill=WAVE)
        level = rms[column] / scale * half
        draw.line([(px, round(middle - level)), (px, round(middle + level))], fill=WAVE_RMS)
    draw.line([(MARGIN_PX, round(middle)), (MARGIN_PX + columns, round(middle))], fill=WAVE_RMS)


def _draw_shots(draw: ImageDraw.ImageDraw, band: tuple[int, int], shots: Sequence[Shot],
                x: _XFn) -> None:
    top, bottom = band
    for index, shot in enumerate(shots):
        left, right = x(shot.start_s), x(shot.end_s)
        draw.rectangle([left, top, max(left, right - 1), bottom],
                       fill=SHOT_COLORS[index % 2])
        room = right - left - 8
        size = shot.shot_size.replace("_", " ")
        if draw.textlength(size, font=_font(12)) > room:
            size = SIZE_ABBREVIATIONS.get(shot.shot_size, "")
        draw.text((left + 4, top + 6), _fit(draw, shot.id, room, _font(14)), fill="white",
                  font=_font(14))
        draw.text((left + 4, top + 28), _fit(draw, size, room, _font(12)), fill="white",
                  font=_font(12))


def _draw_cuts(draw: ImageDraw.ImageDraw, band: tuple[int, int], shots: Sequence[Shot],
               x: _XFn) -> None:
    top, bottom = band
    for shot in shots[1:]:
        draw.line([(x(shot.start_s), top), (x(shot.start_s), bottom)], fill=CUT, width=2)


def _draw_lyrics(draw: ImageDraw.ImageDraw, band: tuple[int, int],
                 lyrics: Sequence[tuple[float, float, str]], x: _XFn) -> None:
    top, _ = band
    for index, (start, end, text) in enumerate(sorted(lyrics)):
        lane_top = top + (index % 2) * LYRIC_LANE_PX
        left, right = x(start), max(x(end), x(start) + 2)
        draw.line([(left, lane_top + 2), (right - 1, lane_top + 2)], fill=FAINT, width=2)
        draw.line([(left, lane_top + 2), (left, lane_top + LYRIC_LANE_PX - 4)], fill=FAINT)
        line = " / ".join(part.strip() for part in text.splitlines() if part.strip())
        draw.text((left + 4, lane_top + 4), _fit(draw, line, right - left - 6, _font(13)),
                  fill=INK, font=_font(13))


def _fit(draw: ImageDraw.ImageDraw, text: str, room_px: float, font: Font) -> str:
    """`text`, cut short with an ellipsis to fit `room_px`; empty when nothing fits."""
    if draw.textlength(text, font=font) <= room_px:
        return text
    while text and draw.textlength(text + "…", font=font) > room_px:
        text = text[:-1]
    return text + "…" if text else ""

