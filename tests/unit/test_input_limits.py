"""Hostile or careless input files are refused early, in one line that names the file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kantoku.agents import cli
from kantoku.planner.music.lyrics import MAX_LYRICS_LINES, load_lyrics
from kantoku.services._core.errors import Category, KantokuError

BRIEF = "title: Limits\nlogline: a short test\nduration_s: 8\n"


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[int, str]:
    """`kantoku ARGS` in this process: its exit code and what it printed to stderr."""
    monkeypatch.setattr(sys, "argv", ["kantoku", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    return int(done.value.code or 0), capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_huge_brief_is_refused_by_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    brief = tmp_path / "brief.yaml"
    brief.write_text(BRIEF)
    with open(brief, "ab") as handle:
        handle.truncate(50 << 20)  # sparse: 50 MiB that would take long to read and parse
    code, err = run_cli(monkeypatch, capsys, "plan", str(brief))
    assert code == 2
    assert "brief.yaml is 50.0 MiB; the limit is 1.0 MiB" in one_line_error(err)


@pytest.mark.parametrize(("name", "content", "words"), [
    ("brief.yaml", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not UTF-8 text"),
    ("brief.yaml", b"title: x\x00\x00\x00", "is not text (it holds NUL bytes"),
    ("brief.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("brief.yaml", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("brief.yaml", b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
                   b"c: &c [*b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c]\n",
     "aliases (*name) are not allowed"),
])
def test_unreadable_briefs_get_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], name: str,
                                        content: bytes, words: str) -> None:
    brief = tmp_path / name
    brief.write_bytes(content)
    code, err = run_cli(monkeypatch, capsys, "plan", str(brief))
    assert code == 2
    line = one_line_error(err)
    assert words in line and name in line


def test_huge_lyrics_are_refused_by_their_size(tmp_path: Path) -> None:
    lyrics = tmp_path / "song.lrc"
    lyrics.write_text("[00:01.00] la\n")
    with open(lyrics, "ab") as handle:
        handle.truncate(20 << 20)
    with pytest.raises(KantokuError) as info:
        load_lyrics(lyrics, duration_s=60.0)
    assert info.value.category == Category.INVALID_REQUEST
    assert info.value.reason == "LYRICS_TOO_LARGE"
    assert "song.lrc is 20.0 MiB; the limit is 1.0 MiB" in info.value.message


def test_lyrics_with_too_many_lines_are_refused(tmp_path: Path) -> None:
    lyrics = tmp_path / "long.lrc"
    lyrics.write_text("".join(f"[{i // 6000:02d}:{i % 60:02d}.00] la\n"
                              for i in range(MAX_LYRICS_LINES + 1)))
    with pytest.raises(KantokuError) as info:
        load_lyrics(lyrics, duration_s=600.0)
    assert info.value.reason == "LYRICS_TOO_LONG"
    assert f"the limit is {MAX_LYRICS_LINES}" in info.value.message


def test_terminal_escapes_in_lyrics_are_dropped(tmp_path: Path) -> None:
    lyrics = tmp_path / "song.lrc"
    lyrics.write_text("[00:01.00]\x1b]0;pwned\x07\x1b[2J\x1b[31mhello\x1b[0m world\x07\n")
    lines, _ = load_lyrics(lyrics, duration_s=10.0)
    assert [line.text for line in lines] == ["hello world"]


def test_error_messages_keep_their_brackets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import make_song

    brief = tmp_path / "brief.yaml"
    brief.write_text(BRIEF)
    lyrics = tmp_path / "empty.lrc"
    lyrics.write_text("\n")
    song = make_song(tmp_path / "song.wav", 8.0)
    code, err = run_cli(monkeypatch, capsys, "plan", str(brief), "--song", str(song),
                        "--lyrics", str(lyrics))
    assert code == 2
    assert "optionally with [mm:ss.xx] stamps (LRC)" in one_line_error(err)


def test_binary_model_registry_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path))
    (tmp_path / "models.yaml").write_bytes(b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00")
    code, err = run_cli(monkeypatch, capsys, "models", "list")
    assert code == 2
    assert "models.yaml is not UTF-8 text" in one_line_error(err)


def test_control_characters_in_a_brief_name_the_field(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    brief = tmp_path / "brief.json"
    brief.write_text('{"title": "x", "logline": "y", "duration_s": 8, "characters": '
                     '[{"name": "Aki"}], "dialogue": [{"speaker": "Aki", "text": "hi\\u0000"}]}')
    code, err = run_cli(monkeypatch, capsys, "plan", str(brief))
    assert code == 2
    assert "dialogue.0.text: holds the control character U+0000" in one_line_error(err)


def test_an_empty_model_id_gets_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path))
    weights = tmp_path / "style.safetensors"
    weights.write_bytes(b"x")
    code, err = run_cli(monkeypatch, capsys, "models", "add", "", "--path", str(weights),
                        "--kind", "adapter", "--license", "MIT")
    assert code == 2
    assert one_line_error(err).startswith("error: ID: '' is not a model id")
