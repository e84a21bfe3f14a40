"""Files written whole (under a temporary name in the same folder, then renamed into place), and
files that must exist.

A reader never sees half a file, and a failure leaves none behind. The temporary file is created
the way `open(path, "w")` creates one (mode 0666 less the umask), so the finished file has the
same permissions as every other file a job writes, unlike `tempfile.mkstemp`'s 0600.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from kantoku.services._core.errors import from_os_error, invalid


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` as UTF-8 with `\\n` line ends to `path`, replacing it whole."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path`, replacing it whole."""
    write_atomic(path, lambda handle: handle.write(data))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(handle)` on a new file that is renamed to `path` once `write` returns.

    Args:
        path: the file to write; its folder is created when missing.
        write: writes the content into the binary handle it is given.

    Raises:
        KantokuError: RESOURCE_EXHAUSTED (DISK_FULL) naming `path` when the disk is full.
    """
    try:
        with partial_file(Path(path)) as partial:
            with open(partial, "wb") as handle:
                write(handle)
            os.replace(partial, path)
    except OSError as exc:  # a full disk is named with the file; the partial one is gone
        raise from_os_error(exc, path) or exc from None


@contextmanager
def partial_file(path: Path) -> Iterator[Path]:
    """A new, empty file beside `path` (`.NAME.XXXX.partial`), removed again on the way out.

    Rename it to `path` inside the block to keep it; whatever is left at the end is deleted.
    Its mode is what `open()` gives a new file (0666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # another writer picked the same name; pick again
            continue
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


#: The name `partial_file` gives a file while it is written (glob pattern).
PARTIAL_PATTERN = ".*.partial"


def remove_leftovers(folder: Path, patterns: Iterable[str] = (PARTIAL_PATTERN,),
                     skip: Iterable[str] = ()) -> list[Path]:
    """Delete what killed writers left under `folder`: files matching `patterns`, at any depth.

    Call it only while no writer runs in `folder` (the job's lock is held): a live writer's
    partial file matches too.

    Args:
        folder: the folder to sweep (missing is fine).
        patterns: glob patterns of leftover file names.
        skip: names of top-level folders not to enter (archived versions).

    Returns:
        The files removed.
    """
    folder, skipped = Path(folder), set(skip)
    removed = []
    for pattern in patterns:
        for path in folder.rglob(pattern):
            if path.relative_to(folder).parts[0] in skipped or not path.is_file():
                continue
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextmanager
def scratch_folder(path: Path) -> Iterator[Path]:
    """A fresh, empty folder at `path` for one step's drafts, removed again on the way out.

    Whatever an earlier, killed attempt left there is removed first, so a step can always run
    again. Only one process may use `path` at a time (the job's lock).
    """
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def require_file(path: Path, what: str, todo: str) -> None:
    """Raises INVALID_REQUEST (FILE_MISSING) naming `what` and `path` when it is not a file.

    Args:
        path: the file that must exist.
        what: how the message names it ("the song").
        todo: what the user should do about it.
    """
    if not Path(path).is_file():
        raise invalid(f"{what} ({path}) does not exist; {todo}", reason="FILE_MISSING",
                      path=str(path))


def read_text_file(path: Path, what: str, max_bytes: int, reason: str) -> str:
    """The UTF-8 text of a file a person wrote (a brief, lyrics, a registry), refused early.

    The size is checked before anything is read, so a huge file costs nothing; a file that is
    not text (not UTF-8, or binary with NUL bytes) is refused naming the file. A UTF-8
    byte-order mark is dropped.

    Args:
        path: the file; its existence is the caller's to check.
        what: how messages name it ("the brief").
        max_bytes: the largest file accepted.
        reason: the ErrorInfo reason prefix: `{reason}_TOO_LARGE`, `{reason}_NOT_UTF8`,
            `{reason}_NOT_TEXT`.

    Raises:
        KantokuError: INVALID_REQUEST with one of the reasons above.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise invalid(f"{what} {path} is {_size(size)}; the limit is {_size(max_bytes)}; "
                      "shorten it", reason=f"{reason}_TOO_LARGE", path=str(path))
    with open(path, "rb") as handle:
        data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise invalid(f"{what} {path} is over {_size(max_bytes)}; shorten it",
                      reason=f"{reason}_TOO_LARGE", path=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid(f"{what} {path} is not UTF-8 text (byte {exc.start} cannot be read; "
                      "Shift_JIS or UTF-16?); save it as UTF-8 and try again",
                      reason=f"{reason}_NOT_UTF8", path=str(path)) from None
    if "\x00" in text:
        raise invalid(f"{what} {path} is not text (it holds NUL bytes, at byte "
                      f"{data.index(0)}); pass the text file itself",
                      reason=f"{reason}_NOT_TEXT", path=str(path))
    return text


def _size(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count / 1024:.0f} KiB" if count >= 1024 else f"{count} bytes"
