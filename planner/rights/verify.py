"""`kantoku rights verify`: the ledger's hash chain and every C2PA manifest in a job's output.

A media file with no manifest, such as a re-encoded or remuxed copy of ``video.mp4`` (what an
upload makes), is reported as carrying none, with why (``c2pa_sign.NO_MANIFEST``).
"""

from __future__ import annotations

import json
from pathlib import Path

from kantoku.planner.rights.c2pa_sign import (
    MEDIA_TYPES,
    PROVENANCE_LABEL,
    read_manifest,
    signing_credentials,
    verify_file,
)
from kantoku.planner.rights.ledger import verify_jsonl
from kantoku.services._core.assets import sha256_file
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
    songs = _song_copies(path)
    song_files = {song for found in songs.values() for song in found}
    for file in sorted(p for p in path.rglob("*") if p.is_file() and _checkable(p)
                       and p not in song_files):
        checked.append(str(file.relative_to(path)))
        problems.extend(_check(file, trust_pem))
    for folder, copies in songs.items():
        checked += [str(song.relative_to(path)) for song in copies]
        problems += _song_problems(folder, copies, path)
    if not problems:
        problems.extend(_anchor_problems(path / "video.mp4", path / "ledger.jsonl", trust_pem))
    return checked, problems


def _anchor_problems(video: Path, ledger: Path, trust_pem: bytes) -> list[str]:
    """The ledger head signed into video.mp4 must still be in ledger.jsonl, at its place."""
    manifest = read_manifest(video, trust_pem)
    head = next((a["data"].get("ledger_head") for a in manifest.get("assertions", [])
                 if a.get("label") == PROVENANCE_LABEL), None)
    if not head:
        return [f"{video.name}: its manifest names no ledger head; it was not signed by a job"]
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    if not any(e.get("seq") == head["seq"] and e.get("hash") == head["hash"] for e in entries):
        return [f"{ledger.name}: entry seq {head['seq']} signed into {video.name} is missing or "
                "changed; the chain was truncated or rewritten"]
    return []


def _song_copies(root: Path) -> dict[Path, list[Path]]:
    """Each job folder (this one and the versions kept inside it) and its copies of the song.

    The song is the holder's file, copied as it is: it carries no manifest of ours, so it is
    checked against the sha256 the job's ledger recorded for it instead."""
    folders = [root, *(p.parent for p in root.rglob("ledger.jsonl") if p.parent != root)]
    return {folder: copies for folder in folders
            if (copies := sorted(p for p in folder.glob("song.*") if p.is_file()))}


def _song_problems(folder: Path, copies: list[Path], root: Path) -> list[str]:
    ledger = folder / "ledger.jsonl"
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()] \
        if ledger.is_file() else []
    recorded = {e.get("data", {}).get("sha256") for e in entries if e.get("kind") == "song"}
    return [f"{song.relative_to(root)}: not the song this job used (its sha256 is not the one "
            "the ledger recorded)" for song in copies if sha256_file(song) not in recorded]


def _checkable(path: Path) -> bool:
    return path.suffix == ".jsonl" or path.suffix.lower() in MEDIA_TYPES and \
        not any(part.startswith(".") for part in path.parts)


def _check(path: Path, trust_pem: bytes) -> list[str]:
    if path.suffix == ".jsonl":
        return [f"{path.name}: {p}" for p in verify_jsonl(path)]
    return verify_file(path, trust_pem)
