"""One error hierarchy for every service, mapped to gRPC status codes and CLI exit codes.

Messages are short, name the field or file, and say what to do.
"""

from __future__ import annotations

import enum
import errno
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

ERROR_DOMAIN = "kantoku.dev"


class Category(enum.Enum):
    INVALID_REQUEST = (grpc.StatusCode.INVALID_ARGUMENT, 2)
    NOT_FOUND = (grpc.StatusCode.NOT_FOUND, 3)
    RIGHTS_DENIED = (grpc.StatusCode.PERMISSION_DENIED, 4)
    UNAUTHENTICATED = (grpc.StatusCode.UNAUTHENTICATED, 5)
    RESOURCE_EXHAUSTED = (grpc.StatusCode.RESOURCE_EXHAUSTED, 6)
    UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, 7)
    DEADLINE_EXCEEDED = (grpc.StatusCode.DEADLINE_EXCEEDED, 8)
    INTERNAL = (grpc.StatusCode.INTERNAL, 1)

    @property
    def status_code(self) -> grpc.StatusCode:
        return self.value[0]

    @property
    def exit_code(self) -> int:
        return self.value[1]


_TRANSIENT = {Category.UNAVAILABLE, Category.RESOURCE_EXHAUSTED, Category.DEADLINE_EXCEEDED}
#: Reasons in a transient category that waiting does not fix: retrying only repeats the work.
_NOT_RETRIED = {"DISK_FULL"}
#: What a full disk (or a full quota) looks like to a file operation.
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


@dataclass
class KantokuError(Exception):
    """Base error. `reason` is an UPPER_SNAKE machine-readable code (google.rpc.ErrorInfo)."""

    message: str
    reason: str = "INTERNAL"
    category: Category = Category.INTERNAL
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def transient(self) -> bool:
        return self.category in _TRANSIENT and self.reason not in _NOT_RETRIED

    def __str__(self) -> str:
        return self.message


def invalid(message: str, reason: str = "INVALID_ARGUMENT", **metadata: str) -> KantokuError:
    return KantokuError(message, reason, Category.INVALID_REQUEST, dict(metadata))


def not_found(message: str, reason: str = "NOT_FOUND", **metadata: str) -> KantokuError:
    return KantokuError(message, reason, Category.NOT_FOUND, dict(metadata))


def unavailable(message: str, reason: str = "UNAVAILABLE", **metadata: str) -> KantokuError:
    return KantokuError(message, reason, Category.UNAVAILABLE, dict(metadata))


def disk_full(path: Path | str) -> KantokuError:
    """RESOURCE_EXHAUSTED (DISK_FULL): nothing more fits at `path`."""
    return KantokuError(f"disk full at {path}; free space there (or point KANTOKU_HOME or --out "
                        "at a bigger disk) and try again", "DISK_FULL",
                        Category.RESOURCE_EXHAUSTED, {"path": str(path)})


def from_os_error(exc: BaseException, path: Path | str | None = None,
                  candidates: Sequence[Path] = ()) -> KantokuError | None:
    """The error a user should see for a failed file operation, or None when it is not one
    kantoku names (a bug, reported as internal).

    Args:
        exc: the exception raised by the file operation.
        path: the file or folder being written, when `exc` does not name it (a failed
            `write()` on an open file has no filename).
        candidates: folders the write may have been in, when neither names it: the one with
            the least free space is named.
    """
    if not (isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS):
        return None
    where = path or exc.filename
    if not where:
        existing = [folder for folder in candidates if folder.exists()]
        where = min(existing, key=lambda f: shutil.disk_usage(f).free) if existing else None
    return disk_full(where or "the output disk")


def internal(message: str, reason: str = "INTERNAL", **metadata: str) -> KantokuError:
    return KantokuError(message, reason, Category.INTERNAL, dict(metadata))


_BY_STATUS = {c.status_code: c for c in Category}


def category_for_status(code: grpc.StatusCode) -> Category:
    """The error category a client should use for a gRPC status code."""
    if code == grpc.StatusCode.CANCELLED:
        return Category.UNAVAILABLE
    return _BY_STATUS.get(code, Category.INTERNAL)
