"""`kantoku rights verify`: the ledger's hash chain and every C2PA manifest in a job's output."""

from __future__ import annotations

from pathlib import Path

from kantoku.planner.rights.c2pa_sign import MEDIA_TYPES, signing_credentials, verify_file
from kantoku.planner.rights.ledger import verify_jsonl
from kantoku.services._core.errors import not_found
from kantoku.services._core.settings import core_settings

#: Files a finished job must have; each signed file also carries a manifest.
REQUIRED = ("video.mp4", "ledger.jsonl")


def trust_anchor() -> bytes:
    """The CA this installation signs with (the local CA, or the production chain's root)."""
    return signing_credentials(core_settings().home_dir).anchor_pem


def verify_path(path: Path, trust_pem: bytes | None = None) -> tuple[list[str], list[str]]:
    """Check a job folder or one file. Returns (what was checked, problems)."""
    if not path.exists():
        raise not_found(f"{path}: no such file or folder", reason="FILE_NOT_FOUND")
    trust_pem = trust_pem if trust_pem is not None else trust_anchor()
    if path.is_file():
        return [path.name], _check(path, trust_pem)
    checked, problems = [], []
    for name in REQUIRED:
        if not (path / name).is_file():
            problems.append(f"{name}: missing from {path}")
    for file in sorted(p for p in path.rglob("*") if p.is_file() and _checkable(p)):
        checked.append(str(file.relative_to(path)))
        problems.extend(_check(file, trust_pem))
    return checked, problems


def _checkable(path: Path) -> bool:
    return path.suffix == ".jsonl" or path.suffix.lower() in MEDIA_TYPES and \
        not any(part.startswith(".") for part in path.parts)


def _check(path: Path, trust_pem: bytes) -> list[str]:
    if path.suffix == ".jsonl":
        return [f"{path.name}: {p}" for p in verify_jsonl(path)]
    return verify_file(path, trust_pem)
