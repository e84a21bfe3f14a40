"""Burnt-in lyrics: the bundled CJK font, wrapping, and the frame hook's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from kantoku.planner.finish.subtitles import BOTTOM_PORTRAIT, SubtitleBurner, wrap_text
from kantoku.planner.music.lyrics import LyricLine
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.fonts import FONT_PACKAGE, cjk_font_path, font, missing_glyphs

WIDTH, HEIGHT, FPS = 720, 1280, 30
NOTDEF = "\U0010fffd"


@pytest.fixture(scope="module")
def burner() -> SubtitleBurner:
    lines = [LyricLine(1.0, 2.0, "こんにちは世界、ずっと一緒にいようよ"),
             LyricLine(3.0, 4.0, "Hello world")]
    return SubtitleBurner(lines, fps=FPS, width_px=WIDTH, height_px=HEIGHT)


def _frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def _drawn(text: str, size: int = 48) -> np.ndarray:
    canvas = Image.new("L", (size * len(text) + size, 2 * size))
    ImageDraw.Draw(canvas).text((size // 2, size // 2), text, font=font(size), fill=255)
    return np.asarray(canvas)


def test_font_file_is_installed() -> None:
    path = cjk_font_path()
    assert path.is_file() and path.suffix == ".otf" and path.stat().st_size > 1_000_000
    assert font(40) is font(40)
    assert FONT_PACKAGE == "pylopdf-fonts-jp"


def test_japanese_renders_glyphs_not_boxes() -> None:
    hello, tofu = _drawn("こんにちは"), _drawn(NOTDEF * 5)
    assert hello.any() and not np.array_equal(hello, tofu)
    assert not np.array_equal(_drawn("愛"), _drawn("夢"))
    assert missing_glyphs("こんにちは、世界！ Hello 漢字") == []
    assert missing_glyphs("안녕 한") == ["안", "녕", "한"]


def test_wrapping_cjk_per_character_and_latin_per_word() -> None:
    def measure(text: str) -> float:
        return float(len(text))

    assert wrap_text("あいうえおかきくけこ", measure, 5) == ["あいうえお", "かきくけこ"]
    # A closing mark never starts a row (it stays with the character before it); rows balance.
    assert wrap_text("あいうえ。かきく", measure, 4) == ["あいう", "え。か", "きく"]
    assert wrap_text("「あい」うえ", measure, 3) == ["「あ", "い」", "うえ"]
    assert wrap_text("one two three four", measure, 9) == ["one two", "three", "four"]
    assert wrap_text("Love君と\nYou", measure, 10) == ["Love君と", "You"]
    assert wrap_text("abcdefgh", measure, 3) == ["abc", "def", "gh"]


def test_frame_with_a_line_changes_only_the_bottom_band(burner: SubtitleBurner) -> None:
    before = _frame()
    after = burner(45, before.copy())
    changed = np.argwhere((after != before).any(axis=2))
    assert len(changed) > 5000
    assert changed[:, 0].min() > HEIGHT // 2
    assert changed[:, 0].max() < round(BOTTOM_PORTRAIT * HEIGHT)
    assert changed[:, 1].min() > 0 and changed[:, 1].max() < WIDTH - 1
    sprite = burner.sprite("こんにちは世界、ずっと一緒にいようよ")
    outside = np.ones((HEIGHT, WIDTH), dtype=bool)
    outside[sprite.top:sprite.top + sprite.height, sprite.left:sprite.left + sprite.width] = False
    assert np.array_equal(after[outside], before[outside])


def test_frame_without_a_line_is_untouched(burner: SubtitleBurner) -> None:
    before = _frame(1)
    for index in (0, 29, 60, 89, 120, 10_000):
        frame = before.copy()
        assert burner(index, frame) is frame
        assert np.array_equal(frame, before)
    assert burner.active_line(30) is not None and burner.active_line(60) is None


def test_white_text_and_dark_band(burner: SubtitleBurner) -> None:
    grey = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    out = burner(100, grey.copy())
    sprite = burner.sprite("Hello world")
    band = out[sprite.top:sprite.top + sprite.height, sprite.left:sprite.left + sprite.width]
    assert band.max() >= 250  # the text fill
    assert band.min() <= 5  # the outline
    assert 60 <= int(np.median(band)) < 128  # the translucent band darkens the background


def test_japanese_sprite_differs_from_tofu_sprite(burner: SubtitleBurner) -> None:
    hello, tofu = burner.sprite("こんにちは"), burner.sprite(NOTDEF * 5)
    assert hello.premultiplied.shape == tofu.premultiplied.shape
    assert not np.array_equal(hello.premultiplied, tofu.premultiplied)


def test_read_only_frame_is_copied_and_wrong_size_rejected(burner: SubtitleBurner) -> None:
    frame = _frame(2)
    frame.flags.writeable = False
    out = burner(45, frame)
    assert out is not frame and not np.array_equal(out, frame)
    with pytest.raises(KantokuError) as info:
        burner(45, np.zeros((100, 100, 3), dtype=np.uint8))
    assert info.value.reason == "FRAME_SIZE_MISMATCH"


def test_overlapping_lines_show_the_later_one_and_warn_about_missing_glyphs() -> None:
    lines = [LyricLine(0.0, 4.0, "first"), LyricLine(1.0, 2.0, "second 한")]
    burner = SubtitleBurner(lines, fps=10, width_px=320, height_px=180)
    assert [burner.active_line(i).text for i in (0, 10, 19, 20)] == [  # type: ignore[union-attr]
        "first", "second 한", "second 한", "first"]
    assert len(burner.warnings) == 1 and "한" in burner.warnings[0]
    with pytest.raises(KantokuError):
        SubtitleBurner(lines, fps=0, width_px=320, height_px=180)


def test_burning_into_yuv_planes_matches_burning_into_rgb() -> None:
    import av

    from kantoku.services.video.encode import bt709_yuv420p, tagged_bt709

    width, height = 360, 640
    burner = SubtitleBurner([LyricLine(0.0, 1.0, "光の中へ Into the light")], fps=30,
                            width_px=width, height_px=height)
    rgb = np.full((height, width, 3), (90, 140, 200), dtype=np.uint8)
    expected = bt709_yuv420p(av.VideoFrame.from_ndarray(burner(0, rgb.copy()), format="rgb24")) \
        .to_ndarray(format="rgb24").astype(int)
    planes = bt709_yuv420p(av.VideoFrame.from_ndarray(rgb, format="rgb24")).to_ndarray()
    untouched = planes.copy()
    assert not burner.burn_yuv(45, planes)  # no line at 1.5 s
    assert np.array_equal(planes, untouched)
    assert burner.burn_yuv(0, planes)
    burned = tagged_bt709(av.VideoFrame.from_ndarray(planes, format="yuv420p")) \
        .to_ndarray(format="rgb24")
    difference = np.abs(burned.astype(int) - expected)
    assert difference.mean() < 0.5 and np.percentile(difference, 99.9) <= 8
    assert not np.array_equal(planes, untouched)
