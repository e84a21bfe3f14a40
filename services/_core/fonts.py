"""The font for text burnt into videos and drawn on sheets: Noto Sans JP (Japanese and Latin).

The font file comes from the PyPI package `pylopdf-fonts-jp` (a data-only wheel carrying the
upstream Noto Sans JP subset OTF from notofonts/noto-cjk, SIL Open Font License 1.1), so a fresh
machine needs no system fonts. It covers Latin, kana, JIS X 0208/0213 kanji and the common
symbols, but not Hangul or emoji: `missing_glyphs` tells which characters would show as boxes.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from kantoku.services._core.errors import KantokuError, internal, invalid

#: The distribution that ships the font file, and its import name.
FONT_PACKAGE = "pylopdf-fonts-jp"
FONT_MODULE = "pylopdf_fonts_jp"
FONT_FILE = "NotoSansJP-Regular.otf"
#: A code point no font maps, so it is drawn with the font's .notdef glyph (the "tofu" box).
_UNMAPPED = "\U0010fffd"
_PROBE_SIZE = 32


def cjk_font_path() -> Path:
    """The path of the Noto Sans JP font file installed with `pylopdf-fonts-jp`.

    Returns:
        An existing `.otf` file.

    Raises:
        KantokuError: INTERNAL (FONT_MISSING) when the package is not installed or lacks the file;
            the message says what to install.
    """
    try:
        root = resources.files(FONT_MODULE)
    except ModuleNotFoundError:
        raise _font_missing(f"the font package {FONT_PACKAGE} is not installed") from None
    path = Path(str(root.joinpath(FONT_FILE)))
    if not path.is_file():
        raise _font_missing(f"{path} is missing from the installed {FONT_PACKAGE}")
    return path


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Noto Sans JP at `size` pixels (loaded once per size and cached).

    Args:
        size: the em size in pixels, 1 or more.

    Raises:
        KantokuError: INVALID_REQUEST for a size under 1; INTERNAL (FONT_MISSING) when the font
            package is not installed.
    """
    if size < 1:
        raise invalid(f"font size {size} px is not usable; pass 1 or more", reason="FONT_SIZE")
    path = cjk_font_path()
    try:
        return ImageFont.truetype(str(path), size)
    except OSError as exc:
        raise _font_missing(f"{path} cannot be read as a font ({exc})") from None


def missing_glyphs(text: str) -> list[str]:
    """The characters of `text` the font has no glyph for (drawn as boxes), each listed once.

    Whitespace and control characters are never reported.
    """
    seen: dict[str, None] = {}
    for char in text:
        if char not in seen and not char.isspace() and char.isprintable() and not _has_glyph(char):
            seen[char] = None
    return list(seen)


@functools.lru_cache(maxsize=4096)
def _has_glyph(char: str) -> bool:
    return _glyph_bitmap(char) != _glyph_bitmap(_UNMAPPED)


@functools.lru_cache(maxsize=4096)
def _glyph_bitmap(char: str) -> bytes:
    """The character drawn alone on a small canvas (pixel bytes), to compare glyphs."""
    canvas = Image.new("L", (2 * _PROBE_SIZE, 2 * _PROBE_SIZE))
    ImageDraw.Draw(canvas).text((_PROBE_SIZE // 2, _PROBE_SIZE // 2), char,
                                font=font(_PROBE_SIZE), fill=255)
    return canvas.tobytes()


def _font_missing(problem: str) -> KantokuError:
    return internal(f"{problem}; install it with `pip install {FONT_PACKAGE}` (or reinstall "
                    "kantoku, which depends on it)", reason="FONT_MISSING", package=FONT_PACKAGE)
