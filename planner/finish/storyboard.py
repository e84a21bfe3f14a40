"""The storyboard: a contact sheet PNG of every shot's keyframe, with times and captions.

Pillow only. Every piece of text is drawn with `caption_font`, the one place to change the font
(e.g. to a CJK font for Japanese captions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from kantoku.services._core.errors import invalid
from kantoku.services._core.files import write_atomic
from kantoku.services._core.fonts import font

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

MARGIN = 16
GAP = 12
TITLE_SIZE = 24
LABEL_SIZE = 14
LINE_SPACING = 4
BACKGROUND = (20, 20, 20)
THUMB_BACKGROUND = (0, 0, 0)
TEXT = (240, 240, 240)
CAPTION = (170, 170, 170)
ELLIPSIS = "…"


@dataclass(frozen=True)
class StoryboardFrame:
    """One shot's keyframe and what to write under it."""

    shot_id: str
    start_s: float
    end_s: float
    image: Path
    caption: str


@dataclass(frozen=True)
class StoryboardLayout:
    """Where everything sits on the sheet; all sizes in pixels."""

    count: int
    columns: int
    thumb_width: int
    thumb_height: int

    @property
    def rows(self) -> int:
        return -(-self.count // self.columns)

    @property
    def line_height(self) -> int:
        return LABEL_SIZE + LINE_SPACING

    @property
    def title_height(self) -> int:
        return TITLE_SIZE + MARGIN

    @property
    def cell_width(self) -> int:
        return self.thumb_width

    @property
    def cell_height(self) -> int:
        return self.thumb_height + LINE_SPACING + 2 * self.line_height

    @property
    def size(self) -> tuple[int, int]:
        width = 2 * MARGIN + self.columns * self.cell_width + (self.columns - 1) * GAP
        height = (2 * MARGIN + self.title_height + self.rows * self.cell_height
                  + (self.rows - 1) * GAP)
        return width, height

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of the `index`-th thumbnail."""
        row, column = divmod(index, self.columns)
        return (MARGIN + column * (self.cell_width + GAP),
                MARGIN + self.title_height + row * (self.cell_height + GAP))


def storyboard_layout(count: int, *, columns: int, thumb_width: int,
                      thumb_height: int) -> StoryboardLayout:
    """The layout of a sheet of `count` frames (never more columns than frames)."""
    return StoryboardLayout(count, max(1, min(columns, count)), thumb_width, thumb_height)


def caption_font(size: int) -> Font:
    """The font for all text on the sheet: Noto Sans JP (Latin and Japanese) at `size` px."""
    return font(size)


def make_storyboard(frames: Sequence[StoryboardFrame], out: Path, *, title: str,
                    columns: int = 4, thumb_width: int = 240) -> None:
    """Write a contact sheet of `frames` to `out` (PNG, written whole then renamed into place).

    Thumbnails are `thumb_width` wide with the first keyframe's aspect ratio (other keyframes
    are fitted inside and centred); under each: "s001  0:00.0–0:02.5" and one caption line,
    shortened with an ellipsis when it does not fit.

    Raises:
        KantokuError: INVALID_REQUEST when there are no frames or a keyframe is missing or not
            an image.
    """
    if not frames:
        raise invalid("no keyframes for the storyboard; render at least one shot",
                      reason="NO_FRAMES")
    if columns < 1 or thumb_width < 16:
        raise invalid(f"columns={columns}, thumb_width={thumb_width}; pass columns >= 1 and "
                      "thumb_width >= 16")
    images = [_load(frame) for frame in frames]
    first_width, first_height = images[0].size
    layout = storyboard_layout(len(frames), columns=columns, thumb_width=thumb_width,
                               thumb_height=max(1, round(thumb_width * first_height
                                                         / first_width)))
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    title_font = caption_font(TITLE_SIZE)
    draw.text((MARGIN, MARGIN), _fit_text(title, title_font, layout.size[0] - 2 * MARGIN),
              font=title_font, fill=TEXT)
    label_font = caption_font(LABEL_SIZE)
    style = _Style(label_font, "–" if _has_glyph(label_font, "–") else "-")
    for index, (frame, image) in enumerate(zip(frames, images, strict=True)):
        _draw_cell(sheet, draw, layout, style, index, frame, image)
    _save_png(sheet, Path(out))


def time_label(seconds: float) -> str:
    """`m:ss.s`, e.g. 0:02.5 or 1:05.0."""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest / 10:04.1f}"


def _load(frame: StoryboardFrame) -> Image.Image:
    path = Path(frame.image)
    if not path.is_file():
        raise invalid(f"the keyframe of shot {frame.shot_id} ({path}) does not exist; render "
                      "the shot again", reason="FILE_MISSING", path=str(path))
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise invalid(f"the keyframe of shot {frame.shot_id} ({path}) is not a readable image "
                      f"({exc}); render the shot again", reason="IMAGE_INVALID",
                      path=str(path)) from None


@dataclass(frozen=True)
class _Style:
    font: Font
    #: Between start and end time: an en dash when the font has one.
    dash: str


def _draw_cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, layout: StoryboardLayout,
               style: _Style, index: int, frame: StoryboardFrame, image: Image.Image) -> None:
    left, top = layout.origin(index)
    box = (layout.thumb_width, layout.thumb_height)
    thumb = ImageOps.contain(image, box, method=Image.Resampling.LANCZOS)
    board = Image.new("RGB", box, THUMB_BACKGROUND)
    board.paste(thumb, ((box[0] - thumb.width) // 2, (box[1] - thumb.height) // 2))
    sheet.paste(board, (left, top))
    font = style.font
    label = (f"{frame.shot_id}  {time_label(frame.start_s)}{style.dash}"
             f"{time_label(frame.end_s)}")
    y = top + layout.thumb_height + LINE_SPACING
    draw.text((left, y), _fit_text(label, font, layout.cell_width), font=font, fill=TEXT)
    caption = " ".join(frame.caption.split())
    draw.text((left, y + layout.line_height), _fit_text(caption, font, layout.cell_width),
              font=font, fill=CAPTION)


def _fit_text(text: str, font: Font, width: int) -> str:
    """`text`, cut and ended with an ellipsis when it is wider than `width` pixels."""
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle].rstrip() + ELLIPSIS) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


def _has_glyph(font: Font, char: str) -> bool:
    """Whether `font` draws `char` as something other than its missing-glyph box."""
    return _render(font, char) != _render(font, "\U0010fffd")


def _render(font: Font, text: str) -> bytes:
    image = Image.new("L", (64, 64))
    ImageDraw.Draw(image).text((0, 0), text, font=font, fill=255)
    return image.tobytes()


def _save_png(image: Image.Image, out: Path) -> None:
    write_atomic(out, lambda handle: image.save(handle, format="PNG"))
