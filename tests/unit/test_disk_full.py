"""A full disk is said as "disk full at PATH" (RESOURCE_EXHAUSTED, exit 6), leaves no partial
file behind, and is not retried.

The disk is a real 256 KiB tmpfs, filled up; mounting one needs root (the test is skipped
without it).
"""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from kantoku.agents import cli
from kantoku.planner.rights.c2pa_sign import CERT_ENV, KEY_ENV, sign_file, signing_credentials
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import Category, KantokuError, from_os_error
from kantoku.services._core.rpc import _as_kantoku_error


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tiny tmpfs with a few KiB left (room for new files, not for their data)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        with open(mount / "filler", "wb") as handle:
            try:
                handle.write(b"\0" * (256 << 10))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _left_over(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != "filler")


def test_asset_store_names_the_full_folder_and_leaves_no_blob(full_disk: Path) -> None:
    store = AssetStore(full_disk / "assets")
    with pytest.raises(KantokuError) as info:
        store.put_bytes(b"x" * (64 << 10), "video/mp4")
    assert info.value.category is Category.RESOURCE_EXHAUSTED
    assert info.value.message.startswith(f"disk full at {full_disk / 'assets'}")
    assert not info.value.transient  # retrying would render the clip again for nothing
    assert _left_over(full_disk) == []


def test_signing_onto_a_full_disk_names_the_file(full_disk: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CERT_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    source = tmp_path / "shot.png"
    Image.effect_noise((256, 256), 64).convert("RGB").save(source)
    credentials = signing_credentials(tmp_path / "home")
    with pytest.raises(KantokuError) as info:
        sign_file(source, full_disk / "shot.png", title="shot", generated=True,
                  credentials=credentials)
    assert info.value.message.startswith(f"disk full at {full_disk / 'shot.png'}")
    assert _left_over(full_disk) == []


def test_cli_exits_6_with_one_line(full_disk: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    brief = tmp_path / "brief.yaml"
    brief.write_text("title: Full\nlogline: a disk with no room\nduration_s: 8\n")
    out = full_disk / "plan.json"
    monkeypatch.setattr(sys, "argv", ["kantoku", "plan", str(brief), "--planner", "heuristic",
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as done:
        cli.main()
    err = capsys.readouterr().err.strip()
    assert done.value.code == 6
    assert err.splitlines() == [f"error: disk full at {out}; free space there (or point "
                                "KANTOKU_HOME or --out at a bigger disk) and try again"]
    assert _left_over(full_disk) == []


def test_a_servers_full_disk_is_resource_exhausted_not_internal() -> None:
    err = _as_kantoku_error(OSError(errno.ENOSPC, "No space left on device"), "X.Generate")
    assert err.category is Category.RESOURCE_EXHAUSTED and err.reason == "DISK_FULL"
    assert from_os_error(OSError(errno.EACCES, "Permission denied")) is None
