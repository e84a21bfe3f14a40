"""`kantoku rights verify`: a job folder against its signed record, its ledger and its manifests.

A folder is checked against record.json (:mod:`record`): every file missing, added, edited or
swapped and any change to the ledger is named. Then the ledger's hash chain, every C2PA
manifest, the song copy and the ledger head signed into video.mp4 are checked. Each
``versions/vN`` folder (kept by ``kantoku edit``) is checked as its own job.

Trust: the CA passed with ``--trust``, or this installation's CA when it has one, never a new
key. A valid signature from a CA not trusted is one problem that names the signer.

A media file with no manifest, such as a re-encoded or remuxed copy of ``video.mp4`` (what an
upload makes), is reported as carrying none, with why (``c2pa_sign.NO_MANIFEST``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from kantoku.planner.claims import JOB_FILE, folder_job
from kantoku.planner.rights.c2pa_sign import (
    MEDIA_TYPES,
    PROVENANCE_LABEL,
    inspect_file,
    installed_anchor,
    read_manifest,
    untrusted_signer,
    verify_file,
)
from kantoku.planner.rights.ledger import verify_jsonl
from kantoku.planner.rights.record import LEDGER_FILE, RecordCheck, check_record
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import invalid, not_found
from kantoku.services._core.settings import core_settings

#: Files a finished job must have; each signed file also carries a manifest.
REQUIRED = ("video.mp4", LEDGER_FILE)
VERSIONS_DIR = "versions"


@dataclass
class Verification:
    """What `rights verify` checked, what failed, and what it wants the person to know."""

    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def trust_anchor() -> bytes | None:
    """The CA this installation signs with, when it has one (nothing is created)."""
    return installed_anchor(core_settings().home_dir)


def read_trust(path: Path) -> bytes:
    """A ``--trust`` file: PEM certificate(s), the CA (and intermediates) of a signer.

    Raises:
        KantokuError: NOT_FOUND for a missing file, INVALID_REQUEST for one that is not PEM.
    """
    if not path.is_file():
        raise not_found(f"--trust {path}: no such file; pass the PEM certificate chain of the "
                        "CA that signed the job", reason="TRUST_NOT_FOUND")
    pem = path.read_bytes()
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise invalid(f"--trust {path}: not a PEM certificate chain; pass the CA's .pem file",
                      reason="TRUST_INVALID") from None
    return pem


def verify_path(path: Path, trust_pem: bytes | None = None) -> Verification:
    """Check a job folder or one file.

    Args:
        path: a job's output folder, or one signed file.
        trust_pem: the CA(s) to trust; this installation's CA (if any) when None.
    """
    if not path.exists():
        raise not_found(f"{path}: no such file or folder", reason="FILE_NOT_FOUND")
    trust_pem = trust_pem if trust_pem is not None else trust_anchor()
    if path.is_file():
        return Verification([path.name], _check(path, trust_pem))
    result, job_id = _verify_folder(path, trust_pem)
    versions = path / VERSIONS_DIR
    kept = sorted((p for p in versions.iterdir() if p.is_dir()), key=_version_number) \
        if versions.is_dir() else []
    lineage: list[tuple[str, Path, str | None]] = []
    for version in kept:
        inner, inner_id = _verify_folder(version, trust_pem)
        where = version.relative_to(path).as_posix()
        lineage.append((where, version, inner_id))
        result.checked += [f"{where}/{name}" for name in inner.checked]
        result.problems += [f"{where}/{problem}" for problem in inner.problems]
        result.notes += [f"{where}: {note}" for note in inner.notes]
    lineage.append((path.name, path, job_id))
    for (where, _, older), (name, folder, _) in zip(lineage, lineage[1:], strict=False):
        parent = _parent_job(folder)
        if parent and older and parent != older:
            result.problems.append(f"{where}: holds job {older}, but {name} was edited from "
                                   f"{parent}; an older version was swapped or replaced")
    return result


def _version_number(folder: Path) -> tuple[int, str]:
    digits = folder.name[1:]
    return (int(digits) if digits.isdigit() else -1, folder.name)


def _parent_job(folder: Path) -> str | None:
    """The job `folder`'s job was edited from, as its ledger's edit entry says."""
    ledger = folder / LEDGER_FILE
    edits = [e for e in _entries(ledger) if e.get("kind") == "edit"] if ledger.is_file() else []
    return str((edits[0].get("data") or {}).get("parent_job")) if edits else None


def _verify_folder(folder: Path, trust_pem: bytes | None) -> tuple[Verification, str | None]:
    """One job folder's problems, and the job its record is for."""
    anchors = x509.load_pem_x509_certificates(trust_pem) if trust_pem else []
    record = check_record(folder, anchors)
    result = Verification(list(record.files), list(record.problems), list(record.notes))
    for name in REQUIRED:
        if not (folder / name).is_file() and name not in record.files:
            result.problems.append(f"{name}: missing from {folder.name}")
    untrusted = set()
    for name in record.files or _media_and_ledgers(folder):
        file = folder / name
        if not file.is_file():
            continue
        if file.suffix == ".jsonl":
            result.problems += [f"{name}: {p}" for p in verify_jsonl(file)]
        elif file.suffix.lower() in MEDIA_TYPES and not file.name.startswith("song."):
            found = inspect_file(file, trust_pem)
            result.problems += found.problems
            if found.signer and not found.trusted:
                untrusted.add(found.signer)
    if not any("not a CA you trust" in p for p in result.problems):
        result.problems += [untrusted_signer(signer) for signer in sorted(untrusted)]
    result.problems += _song_problems(folder) + _job_file_problems(folder, record)
    if not result.problems:
        result.problems += _anchor_problems(folder / "video.mp4", folder / LEDGER_FILE,
                                            trust_pem)
    return result, record.job_id


def _media_and_ledgers(folder: Path) -> list[str]:
    """Without a record: every media file and ledger in the folder, to check what can be."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and (p.suffix == ".jsonl" or p.suffix.lower() in MEDIA_TYPES)
                  and VERSIONS_DIR not in p.relative_to(folder).parts)


def _anchor_problems(video: Path, ledger: Path, trust_pem: bytes | None) -> list[str]:
    """The ledger head signed into video.mp4 must still be in ledger.jsonl, at its place."""
    manifest = read_manifest(video, trust_pem)
    head = next((a["data"].get("ledger_head") for a in manifest.get("assertions", [])
                 if a.get("label") == PROVENANCE_LABEL), None)
    if not head:
        return [f"{video.name}: its manifest names no ledger head; it was not signed by a job"]
    entries = _entries(ledger)
    if not any(e.get("seq") == head["seq"] and e.get("hash") == head["hash"] for e in entries):
        return [f"{ledger.name}: entry seq {head['seq']} signed into {video.name} is missing or "
                "changed; the chain was truncated or rewritten"]
    return []


def _entries(ledger: Path) -> list[dict[str, Any]]:
    """The ledger's entries that are JSON objects (verify_jsonl names the lines that are not)."""
    entries = []
    for line in ledger.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            entries.append(value)
    return entries


def _song_problems(folder: Path) -> list[str]:
    """The song is the holder's file, copied as it is: it carries no manifest of ours, so it is
    checked against the sha256 the job's ledger recorded for it instead."""
    copies = sorted(p for p in folder.glob("song.*") if p.is_file())
    ledger = folder / LEDGER_FILE
    if not copies or not ledger.is_file():
        return []
    entries = _entries(ledger)
    recorded = {(e.get("data") or {}).get("sha256") for e in entries if e.get("kind") == "song"}
    return [f"{song.name}: not the song this job used (its sha256 is not the one the ledger "
            "recorded)" for song in copies if sha256_file(song) not in recorded]


def _job_file_problems(folder: Path, record: RecordCheck) -> list[str]:
    """job.json is not covered (its status changes later), but must name the signed job."""
    if record.job_id is None or not (folder / JOB_FILE).is_file():
        return []
    named = folder_job(folder)
    if named != record.job_id:
        return [f"job.json: names job {named}, but the record is for {record.job_id}; "
                "the folder mixes two jobs"]
    return []


def _check(path: Path, trust_pem: bytes | None) -> list[str]:
    if path.suffix == ".jsonl":
        return [f"{path.name}: {p}" for p in verify_jsonl(path)]
    return verify_file(path, trust_pem)
