"""Files written whole: the permissions of any new file, and nothing half-written left behind."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from kantoku.services._core.errors import KantokuError
from kantoku.services._core.files import require_file, write_atomic, write_text_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_written_whole_gets_the_mode_open_gives(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    with open(plain, "w") as handle:
        handle.write("x")
    out = tmp_path / "deep" / "lyrics.srt"

    write_text_atomic(out, "1\n00:00:01,000 --> 00:00:02,000\n光\n")

    assert out.read_bytes() == "1\n00:00:01,000 --> 00:00:02,000\n光\n".encode()
    assert _mode(out) == _mode(plain)
    assert sorted(p.name for p in out.parent.iterdir()) == ["lyrics.srt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path: Path) -> None:
    out = tmp_path / "timeline.otio"
    out.write_text("old")

    def fail(handle: BinaryIO) -> None:
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(out, fail)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["timeline.otio"]


def test_a_missing_file_is_named_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KantokuError) as error:
        require_file(tmp_path / "s001.mp4", "the clip of shot s001", "render the shot again")
    assert "s001.mp4" in str(error.value) and "render the shot again" in str(error.value)
    assert error.value.reason == "FILE_MISSING"
