"""Lyrics: LRC and plain-text parsing, loading errors, SRT and WebVTT output."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kantoku.planner.music.lyrics import (
    MAX_LINE_S,
    LyricLine,
    clock,
    has_timestamps,
    load_lyrics,
    parse_lrc,
    parse_plain,
    usable_sections,
    write_srt,
    write_vtt,
)
from kantoku.services._core.errors import Category, KantokuError

SONG_LRC = """\ufeff[ti:テスト]
[ar:Someone]
[00:01.00]こんにちは　世界
[00:03.50]Hello <00:04.00>world
[00:05.00][00:20.00]サビだよ Chorus
[00:07]
[00:09:50]last verse
[01:10.00]after the end
"""


def _spans(lines: list[LyricLine]) -> list[tuple[float, float, str]]:
    return [(round(line.start_s, 3), round(line.end_s, 3), line.text) for line in lines]


def test_lrc_japanese_english_repeats_pauses_and_caps() -> None:
    lines, warnings = parse_lrc(SONG_LRC, duration_s=24.0, origin="song.lrc")
    assert _spans(lines) == [
        (1.0, 3.5, "こんにちは　世界"),
        (3.5, 5.0, "Hello world"),
        (5.0, 7.0, "サビだよ Chorus"),  # ended by the pause at 0:07
        (9.5, 9.5 + MAX_LINE_S, "last verse"),  # capped, the next stamp is at 0:20
        (20.0, 24.0, "サビだよ Chorus"),  # the second stamp of line 5; ends with the song
    ]
    assert warnings == ["song.lrc line 8: [01:10.00] is at 1:10.00, at or after the song's end "
                        "(0:24.00); dropped"]


def test_lrc_offset_moves_stamps_earlier_and_clamps_at_zero() -> None:
    lines, warnings = parse_lrc("[00:00.20]first\n[offset:+500]\n[00:02.00]second\n",
                                duration_s=10.0, origin="o.lrc")
    assert _spans(lines) == [(0.0, 1.5, "first"), (1.5, 7.5, "second")]
    assert warnings == ["o.lrc line 1: [00:00.20] falls before the start after the offset; "
                        "moved to 0:00.00"]
    later, _ = parse_lrc("[offset:-250]\n[00:01.00]x\n", duration_s=10.0)
    assert later[0].start_s == pytest.approx(1.25)


def test_lrc_same_stamp_lines_join_and_unstamped_lines_are_reported() -> None:
    text = "[00:01.00]君が好き\n[00:01.00]I love you\n[Chorus]\n[00:03.00]\n"
    lines, warnings = parse_lrc(text, duration_s=5.0, origin="t.lrc")
    assert _spans(lines) == [(1.0, 3.0, "君が好き\nI love you")]
    assert warnings == ["t.lrc line 3: no [mm:ss.xx] time stamp; left out"]


def test_lrc_bad_offset_is_ignored_with_a_warning() -> None:
    lines, warnings = parse_lrc("[offset:soon]\n[00:01]a\n", duration_s=3.0, origin="b.lrc")
    assert lines == [LyricLine(1.0, 3.0, "a")]
    assert warnings == ["b.lrc line 1: [offset:soon] is not a number of milliseconds; ignored"]


def test_lrc_with_every_stamp_past_the_end_is_empty() -> None:
    with pytest.raises(KantokuError) as info:
        parse_lrc("[02:00.00]late\n", duration_s=60.0, origin="late.lrc")
    assert info.value.reason == "LYRICS_EMPTY" and "late.lrc" in info.value.message


def test_plain_lines_spread_over_two_sections() -> None:
    text = "[Verse]\n一行目\n二行目\n\nthird line\n"
    lines, warnings = parse_plain(text, sections=[(10.0, 16.0), (2.0, 5.0)], duration_s=20.0,
                                  origin="p.txt")
    assert _spans(lines) == [(2.0, 5.0, "一行目"), (10.0, 13.0, "二行目"),
                             (13.0, 16.0, "third line")]
    assert len(warnings) == 1
    assert "lyrics have no timestamps; lines were spread over the vocal sections" in warnings[0]


def test_plain_without_sections_uses_the_whole_song() -> None:
    lines, warnings = parse_plain("a\nb\n", sections=[(30.0, 40.0)], duration_s=8.0)
    assert _spans(lines) == [(0.0, 4.0, "a"), (4.0, 8.0, "b")]
    assert "spread over the whole song" in warnings[0]


def test_usable_sections_clip_merge_and_drop() -> None:
    assert usable_sections([(-1.0, 2.0), (1.5, 3.0), (5.0, 5.0), (9.0, 12.0)], 10.0) == [
        (0.0, 3.0), (9.0, 10.0)]


def test_srt_and_vtt_exact_text(tmp_path: Path) -> None:
    lines = [LyricLine(1.5, 4.0, "こんにちは"), LyricLine(3723.25, 3725.0, "A & B <3\nline 2")]
    write_srt(lines, tmp_path / "lyrics.srt")
    write_vtt(lines, tmp_path / "lyrics.vtt")
    assert (tmp_path / "lyrics.srt").read_bytes().decode("utf-8") == (
        "1\n00:00:01,500 --> 00:00:04,000\nこんにちは\n\n"
        "2\n01:02:03,250 --> 01:02:05,000\nA & B <3\nline 2\n")
    assert (tmp_path / "lyrics.vtt").read_bytes().decode("utf-8") == (
        "WEBVTT\n\n00:00:01.500 --> 00:00:04.000\nこんにちは\n\n"
        "01:02:03.250 --> 01:02:05.000\nA &amp; B &lt;3\nline 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lyrics.srt", "lyrics.vtt"]


def test_load_picks_lrc_or_plain(tmp_path: Path) -> None:
    lrc = tmp_path / "song.lrc"
    lrc.write_text(SONG_LRC, encoding="utf-8")
    lines, _ = load_lyrics(lrc, duration_s=24.0)
    assert lines[0].text == "こんにちは　世界"
    plain = tmp_path / "song.txt"
    plain.write_text("歌詞\n", encoding="utf-8")
    lines, warnings = load_lyrics(plain, duration_s=6.0, vocal_sections=[(1.0, 5.0)])
    assert _spans(lines) == [(1.0, 5.0, "歌詞")]
    assert warnings[0].startswith("song.txt: ") and str(tmp_path) not in warnings[0]
    assert has_timestamps(SONG_LRC) and not has_timestamps("[ar:x]\nplain")


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KantokuError) as info:
        load_lyrics(tmp_path / "nope.lrc", duration_s=10.0)
    assert info.value.category == Category.NOT_FOUND
    assert info.value.reason == "LYRICS_NOT_FOUND" and "nope.lrc" in info.value.message


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "sjis.lrc"
    path.write_bytes("[00:01.00]こんにちは\n".encode("shift_jis"))
    with pytest.raises(KantokuError) as info:
        load_lyrics(path, duration_s=10.0)
    assert info.value.category == Category.INVALID_REQUEST
    assert info.value.reason == "LYRICS_NOT_UTF8" and "sjis.lrc" in info.value.message
    assert "UTF-8" in info.value.message


@pytest.mark.parametrize("content", ["", "\n  \n", "[ti:Only tags]\n[ar:Someone]\n",
                                     "[Chorus]\n"])
def test_load_without_lyric_lines(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KantokuError) as info:
        load_lyrics(path, duration_s=10.0)
    assert info.value.reason == "LYRICS_EMPTY" and "empty.txt" in info.value.message


def test_duration_must_be_positive() -> None:
    with pytest.raises(KantokuError) as info:
        parse_lrc("[00:01]a", duration_s=0.0)
    assert info.value.reason == "DURATION_INVALID"


def test_lyric_line_validates_and_serialises() -> None:
    with pytest.raises(ValueError):
        LyricLine(2.0, 1.0, "backwards")
    with pytest.raises(ValueError):
        LyricLine(0.0, 1.0, "")
    assert dataclasses.asdict(LyricLine(0.5, 1.0, "歌")) == {"start_s": 0.5, "end_s": 1.0,
                                                             "text": "歌"}
    assert clock(185.5) == "3:05.50"
