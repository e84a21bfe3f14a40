"""Burn lyric lines into video frames: the `frame_hook` of `assemble_video`.

Each distinct line is laid out once (wrapped, shrunk when it would need more than `MAX_ROWS`
rows) and drawn once with Pillow to an RGBA sprite: white Noto Sans JP text with a dark outline
on a translucent rounded band. Per frame only the sprite's rectangle is alpha-blended with
integer numpy arithmetic (exact: pixels under fully transparent sprite pixels are unchanged), and
frames with no line showing are returned as they are.

Layout: the font is `FONT_FRACTION` of the frame height; text wraps at `WIDTH_FRACTION` of the
width, per character in Japanese/Chinese (keeping closing punctuation and small kana off the
start of a row, opening brackets off its end) and per word in Latin text, with rows balanced in
length. The band is centred horizontally with its bottom at `BOTTOM_PORTRAIT` of the height in
portrait frames (above the 9:16 apps' caption and button area) or `BOTTOM_LANDSCAPE` otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kantoku.planner.music.lyrics import LyricLine, clock
from kantoku.services._core.errors import invalid
from kantoku.services._core.fonts import font, missing_glyphs

FONT_FRACTION = 0.042
WIDTH_FRACTION = 0.85
BOTTOM_PORTRAIT = 0.78
BOTTOM_LANDSCAPE = 0.92
MAX_ROWS = 3
#: The smallest the font is shrunk to, as a fraction of its size, to fit `MAX_ROWS` rows.
MIN_SHRINK = 0.7
LINE_SPACING = 1.3
STROKE_FRACTION = 0.08
PAD_X_FRACTION = 0.45
PAD_Y_FRACTION = 0.25
RADIUS_FRACTION = 0.3
TEXT_RGBA = (255, 255, 255, 255)
STROKE_RGBA = (0, 0, 0, 255)
BAND_RGBA = (0, 0, 0, 110)
#: BT.709 luma weights of red and blue: the matrix of the frames `burn_yuv` draws into.
KR, KB = 0.2126, 0.0722

_CJK = (r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
        r"\uf900-\ufaff\uff00-\uffef")
_ATOM = re.compile(rf"\s+|[{_CJK}]|[^\s{_CJK}]+")
#: Characters that must not start a row (kinsoku): closing marks, prolonged sound, small kana.
_NO_ROW_START = frozenset("、。，．,.!?！？)）」』】〕〉》]｝・：；:;ー〜～…‥ゝゞヽヾ"
                          "ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
#: Characters that must not end a row: opening brackets and quotes.
_NO_ROW_END = frozenset("(（「『【〔〈《[｛")

Measure = Callable[[str], float]


@dataclass(frozen=True)
class _Atom:
    """An unbreakable piece of text, and whether a space separates it from the one before."""

    text: str
    space_before: bool


@dataclass(frozen=True)
class Sprite:
    """A line drawn once, ready to blend: where it goes and its precomputed blend terms.

    For a frame pixel `p` under sprite pixel (colour `c`, alpha `a`, both 0..255) the result is
    `(p * (255 - a) + c * a + 128) / 255`, computed exactly with integers.
    """

    top: int
    left: int
    inverse_alpha: np.ndarray  # (h, w, 1) uint16: 255 - a
    premultiplied: np.ndarray  # (h, w, 3) uint16: c * a + 128

    @property
    def height(self) -> int:
        return int(self.inverse_alpha.shape[0])

    @property
    def width(self) -> int:
        return int(self.inverse_alpha.shape[1])


@dataclass(frozen=True)
class YuvSprite:
    """A sprite's blend terms in BT.709 limited-range yuv420p, at even coordinates.

    Blending in the planes the video already has skips two colour conversions per frame.
    """

    top: int
    left: int
    y_inverse: np.ndarray  # (h, w) uint16: 255 - a
    y_premultiplied: np.ndarray  # (h, w) uint16: Y(c) * a + 128
    uv_inverse: np.ndarray  # (h/2, w/2) uint16, alpha averaged over 2x2
    u_premultiplied: np.ndarray
    v_premultiplied: np.ndarray


class SubtitleBurner:
    """Draws the lyric line showing at each frame; pass it as `assemble_video(frame_hook=...)`.

    Attributes:
        warnings: one line per lyric containing characters the font cannot draw (shown as
            boxes), for the job's report.
    """

    def __init__(self, lines: Sequence[LyricLine], *, fps: int, width_px: int,
                 height_px: int) -> None:
        """Prepares the frame-to-line lookup and renders every distinct line's sprite once.

        Args:
            lines: the lyric lines; where two overlap, the one starting later is shown.
            fps: frames per second of the video the frames belong to.
            width_px: frame width.
            height_px: frame height.

        Raises:
            KantokuError: INVALID_REQUEST when fps or the size is not positive.
        """
        if fps <= 0 or width_px <= 0 or height_px <= 0:
            raise invalid(f"subtitles need a positive fps and size, got {fps} fps and "
                          f"{width_px}x{height_px}", reason="SUBTITLE_SETTINGS_INVALID")
        self.fps, self.width, self.height = fps, width_px, height_px
        self.lines = sorted(lines, key=lambda line: line.start_s)
        self.font_px = max(8, round(FONT_FRACTION * height_px))
        self.warnings = _glyph_warnings(self.lines)
        self._frame_line = _frame_lookup(self.lines, fps)
        self._sprites = {line.text: self._render(line.text) for line in self.lines}
        self._yuv_sprites: dict[str, YuvSprite] = {}

    def active_line(self, frame_index: int) -> LyricLine | None:
        """The line showing at `frame_index` (frames [round(start*fps), round(end*fps)))."""
        if not 0 <= frame_index < len(self._frame_line):
            return None
        index = int(self._frame_line[frame_index])
        return self.lines[index] if index >= 0 else None

    def sprite(self, text: str) -> Sprite:
        """The pre-rendered sprite of a line's text (rendered now if it is not one of the lines)."""
        if text not in self._sprites:
            self._sprites[text] = self._render(text)
        return self._sprites[text]

    def __call__(self, frame_index: int, rgb: np.ndarray) -> np.ndarray:
        """Burns in the line showing at `frame_index`, drawing into `rgb` in place.

        Args:
            frame_index: the frame's index in the video (time = index / fps).
            rgb: the frame, uint8 of shape (height, width, 3).

        Returns:
            `rgb` itself: untouched when no line shows, else with the line drawn (a copy is
            drawn on when `rgb` is read-only).
        """
        line = self.active_line(frame_index)
        if line is None:
            return rgb
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise invalid(f"frame {frame_index} is {rgb.dtype} {rgb.shape}; the subtitles were "
                          f"laid out for uint8 ({self.height}, {self.width}, 3)",
                          reason="FRAME_SIZE_MISMATCH")
        if not rgb.flags.writeable:
            rgb = rgb.copy()
        _blend(rgb, self.sprite(line.text))
        return rgb

    def burn_yuv(self, frame_index: int, planes: np.ndarray) -> bool:
        """Burns the line showing at `frame_index` into a yuv420p frame's planes, in place.

        Args:
            frame_index: the frame's index in the video.
            planes: the frame as PyAV's `to_ndarray()` gives yuv420p (limited-range BT.709):
                uint8 (height * 3 / 2, width), the Y plane then the U and V planes.

        Returns:
            Whether a line was drawn (False: `planes` is untouched).
        """
        line = self.active_line(frame_index)
        if line is None:
            return False
        if planes.shape != (self.height * 3 // 2, self.width):
            raise invalid(f"frame {frame_index} planes are {planes.shape}; the subtitles were "
                          f"laid out for {self.width}x{self.height} yuv420p",
                          reason="FRAME_SIZE_MISMATCH")
        if line.text not in self._yuv_sprites:
            self._yuv_sprites[line.text] = _to_yuv(self.sprite(line.text))
        _blend_yuv(planes, self._yuv_sprites[line.text], self.width, self.height)
        return True

    def _render(self, text: str) -> Sprite:
        size, rows = self._layout(text)
        image = _draw_rows(rows, font(size))
        return _to_sprite(image, self._bottom(), self.width)

    def _layout(self, text: str) -> tuple[int, list[str]]:
        """The font size and rows: the full size, shrunk in steps while over MAX_ROWS rows."""
        size = self.font_px
        smallest = max(8, math.ceil(self.font_px * MIN_SHRINK))
        while True:
            rows = wrap_text(text, _measure(font(size)), self._max_text_width(size))
            if len(rows) <= MAX_ROWS or size <= smallest:
                return size, rows
            size = max(smallest, round(size * 0.9))

    def _max_text_width(self, size: int) -> float:
        pad = 2 * round(size * PAD_X_FRACTION)
        return max(float(size), min(WIDTH_FRACTION * self.width, self.width - pad))

    def _bottom(self) -> int:
        fraction = BOTTOM_PORTRAIT if self.height > self.width else BOTTOM_LANDSCAPE
        return round(fraction * self.height)


# --- layout ----------------------------------------------------------------------------------


def wrap_text(text: str, measure: Measure, max_width: float) -> list[str]:
    """Rows of `text` no wider than `max_width` (as `measure` tells), balanced in length.

    Explicit line breaks are kept. Japanese/Chinese text breaks between any two characters
    (closing punctuation and small kana never start a row, opening brackets never end one);
    other text breaks at spaces; a single word wider than a row is split by characters. The
    greedy row count is kept while the width is narrowed (binary search) so rows come out even.
    """
    rows: list[str] = []
    for paragraph in text.split("\n"):
        atoms = _atoms(paragraph)
        if not atoms:
            continue
        greedy = _fill(atoms, measure, max_width)
        low, high = max_width / 2, max_width
        for _ in range(8):
            middle = (low + high) / 2
            if len(_fill(atoms, measure, middle)) <= len(greedy):
                high = middle
            else:
                low = middle
        rows.extend(_fill(atoms, measure, high))
    return rows


def _atoms(paragraph: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    space = False
    for match in _ATOM.finditer(paragraph):
        piece = match.group()
        if piece.isspace():
            space = bool(atoms)
            continue
        if atoms and not space and (piece[0] in _NO_ROW_START
                                    or atoms[-1].text[-1] in _NO_ROW_END):
            atoms[-1] = _Atom(atoms[-1].text + piece, atoms[-1].space_before)
        else:
            atoms.append(_Atom(piece, space))
        space = False
    return atoms


def _fill(atoms: Sequence[_Atom], measure: Measure, max_width: float) -> list[str]:
    """Greedy rows: each atom joins the current row when it fits, else starts the next one."""
    rows: list[str] = []
    current = ""
    for atom in atoms:
        for index, piece in enumerate(_pieces(atom.text, measure, max_width)):
            joiner = " " if atom.space_before and index == 0 and current else ""
            candidate = current + joiner + piece
            if current and measure(candidate) > max_width:
                rows.append(current)
                current = piece
            else:
                current = candidate
    if current:
        rows.append(current)
    return rows


def _pieces(text: str, measure: Measure, max_width: float) -> list[str]:
    """`text` itself when it fits a row, else cut into the longest runs of characters that do."""
    if measure(text) <= max_width:
        return [text]
    pieces: list[str] = []
    current = ""
    for char in text:
        if current and measure(current + char) > max_width:
            pieces.append(current)
            current = char
        else:
            current += char
    return [*pieces, current] if current else pieces


def _measure(face: ImageFont.FreeTypeFont) -> Measure:
    stroke = _stroke(int(face.size))
    return lambda text: face.getlength(text) + 2 * stroke


def _stroke(size: int) -> int:
    return max(1, round(size * STROKE_FRACTION))


# --- drawing ---------------------------------------------------------------------------------


def _draw_rows(rows: Sequence[str], face: ImageFont.FreeTypeFont) -> Image.Image:
    """The rows centred on a translucent rounded band, white with a dark outline (RGBA)."""
    size = int(face.size)
    stroke, row_height = _stroke(size), round(size * LINE_SPACING)
    pad_x, pad_y = round(size * PAD_X_FRACTION), round(size * PAD_Y_FRACTION)
    text_width = math.ceil(max((face.getlength(row) for row in rows), default=0.0)) + 2 * stroke
    width, height = text_width + 2 * pad_x, row_height * max(1, len(rows)) + 2 * pad_y
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=round(size * RADIUS_FRACTION),
                           fill=BAND_RGBA)
    for index, row in enumerate(rows):
        draw.text((width / 2, pad_y + row_height * (index + 0.5)), row, font=face, anchor="mm",
                  fill=TEXT_RGBA, stroke_width=stroke, stroke_fill=STROKE_RGBA)
    return image


def _to_sprite(image: Image.Image, bottom: int, frame_width: int) -> Sprite:
    """The blend terms of `image` placed centred with its bottom edge at row `bottom`.

    A sprite wider than the frame is cropped to it; one taller than `bottom` is cropped at the
    top of the frame.
    """
    rgba = np.asarray(image, dtype=np.uint16)
    left = (frame_width - rgba.shape[1]) // 2
    if left < 0:
        rgba, left = rgba[:, -left:-left + frame_width], 0
    top = bottom - rgba.shape[0]
    if top < 0:
        rgba, top = rgba[-top:], 0
    alpha = rgba[:, :, 3:4]
    return Sprite(top, left, np.ascontiguousarray(255 - alpha),
                  np.ascontiguousarray(rgba[:, :, :3] * alpha + 128))


def _blend(rgb: np.ndarray, sprite: Sprite) -> None:
    """Alpha-blends `sprite` into `rgb` in place; exact division by 255 with integers."""
    region = rgb[sprite.top:sprite.top + sprite.height, sprite.left:sprite.left + sprite.width]
    mixed = region * sprite.inverse_alpha  # uint8 * uint16 -> uint16, at most 65025
    mixed += sprite.premultiplied
    mixed += mixed >> 8
    mixed >>= 8
    region[...] = mixed


def _to_yuv(sprite: Sprite) -> YuvSprite:
    """The sprite's colour and alpha in limited-range BT.709, padded to even coordinates."""
    top, left = sprite.top - sprite.top % 2, sprite.left - sprite.left % 2
    height = sprite.height + sprite.top % 2
    width = sprite.width + sprite.left % 2
    height, width = height + height % 2, width + width % 2
    alpha = np.zeros((height, width), dtype=np.float64)
    rgb = np.zeros((height, width, 3), dtype=np.float64)
    rows = slice(sprite.top - top, sprite.top - top + sprite.height)
    cols = slice(sprite.left - left, sprite.left - left + sprite.width)
    alpha[rows, cols] = 255.0 - sprite.inverse_alpha[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = (sprite.premultiplied - 128.0) / (255.0 - sprite.inverse_alpha)
    rgb[rows, cols] = np.nan_to_num(colour)
    r, g, b = rgb[..., 0] / 255, rgb[..., 1] / 255, rgb[..., 2] / 255
    luma = KR * r + (1 - KR - KB) * g + KB * b
    y = 16 + 219 * luma
    u = 128 + 224 * (b - luma) / (2 * (1 - KB))
    v = 128 + 224 * (r - luma) / (2 * (1 - KR))

    def pooled(values: np.ndarray) -> np.ndarray:
        return values.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    a2 = pooled(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        u2 = np.nan_to_num(pooled(u * alpha) / a2)
        v2 = np.nan_to_num(pooled(v * alpha) / a2)

    def terms(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return np.rint(values * weight + 128).astype(np.uint16)

    return YuvSprite(top, left, np.rint(255 - alpha).astype(np.uint16), terms(y, alpha),
                     np.rint(255 - a2).astype(np.uint16), terms(u2, a2), terms(v2, a2))


def _blend_yuv(planes: np.ndarray, sprite: YuvSprite, width: int, height: int) -> None:
    """Alpha-blends a YuvSprite into yuv420p planes in place (same integer rule as `_blend`)."""
    chroma = planes[height:].reshape(2, height // 2, width // 2)  # U then V, each (h/2, w/2)
    targets = [(planes[:height], sprite.top, sprite.left, sprite.y_inverse,
                sprite.y_premultiplied)]
    for plane, premultiplied in zip(chroma, (sprite.u_premultiplied, sprite.v_premultiplied),
                                    strict=True):
        targets.append((plane, sprite.top // 2, sprite.left // 2, sprite.uv_inverse,
                        premultiplied))
    for plane, top, left, inverse, premultiplied in targets:
        region = plane[top:top + inverse.shape[0], left:left + inverse.shape[1]]
        mixed = region * inverse
        mixed += premultiplied
        mixed += mixed >> 8
        mixed >>= 8
        region[...] = mixed


# --- lookups and checks ----------------------------------------------------------------------


def _frame_lookup(lines: Sequence[LyricLine], fps: int) -> np.ndarray:
    """For every frame up to the last line's end: the index of the line showing, or -1."""
    last = max((round(line.end_s * fps) for line in lines), default=0)
    lookup = np.full(last, -1, dtype=np.int32)
    for index, line in enumerate(lines):
        lookup[round(line.start_s * fps):round(line.end_s * fps)] = index
    return lookup


def _glyph_warnings(lines: Sequence[LyricLine]) -> list[str]:
    warnings = []
    for line in lines:
        missing = missing_glyphs(line.text)
        if missing:
            warnings.append(f"lyrics at {clock(line.start_s)}: the font has no glyph for "
                            f"{' '.join(missing)}; they show as boxes")
    return warnings
