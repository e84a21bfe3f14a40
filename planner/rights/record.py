"""record.json: the job's signed record of its whole output, written last.

The C2PA manifests vouch for each media file and the ledger's hash chain for its own order, but
neither covers the text files (plan.json, rights.*, timeline.otio...), the set of files, or the
end of the chain. The record does: every file of the job folder by relative path and sha256, and
the ledger's entry count and head hash, signed as a JWS (RFC 7515, detached payload: the record's
canonical JSON) with the same credentials as the C2PA manifests, their chain in ``x5c``.

Not covered, because other commands write them after the job: ``job.json`` (the job's status),
``export/`` (``kantoku export``) and ``versions/`` (``kantoku edit``; each ``versions/vN`` is a
job folder with its own record). Hidden names (``.work``, partial files) are scratch space.
The chain in ``x5c`` says who signed; it cannot vouch for itself: trust comes from a CA the
person verifying passes (``--trust``) or this installation's own CA.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kantoku.planner.rights.c2pa_sign import SigningCredentials, signer_name, untrusted_signer
from kantoku.planner.rights.ledger import canonical_json, verify_jsonl
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import internal
from kantoku.services._core.files import write_text_atomic

RECORD_FILE = "record.json"
LEDGER_FILE = "ledger.jsonl"
#: Written after the job by other commands: listed as not covered, never a failure.
AFTER_JOB = ("job.json", "export", "versions")
VERSION = 1
_ALGORITHMS = {"es256": "ES256", "es384": "ES384", "es512": "ES512", "ps256": "PS256",
               "ed25519": "EdDSA"}


@dataclass
class RecordCheck:
    """What checking a folder against its record found."""

    problems: list[str] = field(default_factory=list)
    #: Plain facts for the person verifying: who signed, what is not covered.
    notes: list[str] = field(default_factory=list)
    job_id: str | None = None
    #: Relative paths the record covers.
    files: list[str] = field(default_factory=list)


def job_files(folder: Path) -> dict[str, str]:
    """Relative path (POSIX) → sha256 of every file the record covers, in path order."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and _covered(relative):
            found[relative.as_posix()] = sha256_file(path)
    return found


def _covered(relative: Path) -> bool:
    first = relative.parts[0]
    return first not in (RECORD_FILE, *AFTER_JOB) and \
        not any(part.startswith(".") for part in relative.parts)


def ledger_head(path: Path) -> dict[str, Any]:
    """``{"entries": N, "head": last hash}`` of an exported ledger (head "" when empty)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"entries": len(lines), "head": json.loads(lines[-1]).get("hash", "") if lines else ""}


def write_record(folder: Path, job_id: str, credentials: SigningCredentials,
                 signed: dict[str, str]) -> Path:
    """Seal `folder`: sign every file's sha256 and the ledger's head into record.json.

    Args:
        folder: the finished job folder (ledger.jsonl exported, every output final).
        job_id: the job.
        credentials: the C2PA signing credentials (:func:`c2pa_sign.signing_credentials`).
        signed: relative path → sha256 the sign step wrote; each must still be on disk as is.

    Raises:
        KantokuError: INTERNAL when the exported ledger's chain is broken or a signed file
            changed before the record was written (nothing is sealed then).
    """
    ledger = folder / LEDGER_FILE
    broken = verify_jsonl(ledger)
    files = job_files(folder)
    changed = [name for name, digest in signed.items() if files.get(name) != digest]
    if broken or changed:
        what = f"{LEDGER_FILE}: {broken[0]}" if broken else \
            f"{changed[0]}: changed after the sign step"
        raise internal(f"{folder}: not sealed, {what}; run the job again into a new folder",
                       reason="RECORD_UNSEALED")
    record = {"version": VERSION, "job_id": job_id,
              "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "ledger": {"file": LEDGER_FILE, **ledger_head(ledger)}, "files": files}
    chain = x509.load_pem_x509_certificates(credentials.cert_chain_pem)
    x5c = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain]
    token = jwt.api_jws.PyJWS().encode(
        canonical_json(record).encode(), credentials.private_key_pem,
        algorithm=_ALGORITHMS[credentials.alg], headers={"x5c": x5c, "typ": "kantoku-record"},
        is_payload_detached=True)
    path = folder / RECORD_FILE
    write_text_atomic(path, json.dumps({"record": record, "jws": token}, indent=2,
                                       ensure_ascii=False) + "\n")
    return path


def check_record(folder: Path, anchors: list[x509.Certificate]) -> RecordCheck:
    """Check `folder` against its record.json: signature, signer, every file, the ledger head.

    Every problem names the file: ``plan.json: changed since the job signed it``,
    ``shots/s003.mp4: missing``, ``extra.mp4: not part of the job's record``.
    """
    check = RecordCheck()
    loaded = _load(folder / RECORD_FILE, check)
    if loaded is None:
        return check
    record, chain = loaded
    check.job_id, check.files = str(record.get("job_id")), sorted(record["files"])
    _check_signer(chain, record, anchors, check)
    _check_files(folder, record, check)
    later = sorted(p.name for p in folder.iterdir() if p.name in AFTER_JOB)
    if later:
        check.notes.append(f"not covered (written after the job): {', '.join(later)}")
    return check


def _load(path: Path, check: RecordCheck) -> tuple[dict[str, Any], list[x509.Certificate]] | None:
    """The record and the chain that signed it, once the signature matches; None otherwise."""
    if not path.is_file():
        check.problems.append(f"{RECORD_FILE}: missing, so nothing vouches for this folder's "
                              "files and ledger; finish the job with `kantoku resume`, or get "
                              "the folder again from whoever made it")
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        record, token = document["record"], str(document["jws"])
        header = jwt.get_unverified_header(token)
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
        jwt.api_jws.PyJWS().decode_complete(
            token, key=chain[0].public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            algorithms=list(_ALGORITHMS.values()), detached_payload=canonical_json(record)
            .encode())
        if not isinstance(record.get("files"), dict):
            raise TypeError("no files")
    except jwt.InvalidSignatureError:
        check.problems.append(f"{RECORD_FILE}: its signature does not match it; it was edited "
                              "after the job signed it")
        return None
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, jwt.PyJWTError) as exc:
        check.problems.append(f"{RECORD_FILE}: not a signed kantoku record ({exc}); get the "
                              "folder again from whoever made it")
        return None
    return record, chain


def _check_signer(chain: list[x509.Certificate], record: dict[str, Any],
                  anchors: list[x509.Certificate], check: RecordCheck) -> None:
    leaf = chain[0]
    signer = signer_name(_attribute(leaf.subject, NameOID.COMMON_NAME),
                         _attribute(leaf.subject, NameOID.ORGANIZATION_NAME))
    ca = chain[-1].issuer
    issuer = signer_name(_attribute(ca, NameOID.COMMON_NAME),
                         _attribute(ca, NameOID.ORGANIZATION_NAME))
    when = dt.datetime.fromisoformat(str(record.get("signed_at")))
    if not leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc:
        check.problems.append(f"{RECORD_FILE}: signed on {when:%Y-%m-%d}, outside the signing "
                              "certificate's validity")
    if not _chains_to(chain, anchors):
        check.problems.append(untrusted_signer(f"{signer} (CA {issuer})"))
        return
    check.notes.append(f"signed by {signer} (CA {issuer}), a CA you trust")


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _chains_to(chain: list[x509.Certificate], anchors: list[x509.Certificate]) -> bool:
    """Each certificate issued by the next, and the last one an anchor or issued by one."""
    try:
        for cert, issuer in zip(chain, chain[1:], strict=False):
            cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    top = chain[-1]
    for anchor in anchors:
        if anchor == top:
            return True
        try:
            top.verify_directly_issued_by(anchor)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def _check_files(folder: Path, record: dict[str, Any], check: RecordCheck) -> None:
    recorded: dict[str, str] = record["files"]
    present = job_files(folder)
    for name in sorted(set(recorded) | set(present)):
        if name not in present:
            check.problems.append(f"{name}: missing")
        elif name not in recorded:
            check.problems.append(f"{name}: not part of the job's record")
        elif present[name] != recorded[name]:
            check.problems.append(f"{name}: {_what_changed(folder / name, record)}")


def _what_changed(path: Path, record: dict[str, Any]) -> str:
    """How a changed file differs; for the ledger, whether entries went or the chain moved."""
    if path.name != LEDGER_FILE or path.parent.name == "shots":
        return "changed since the job signed it"
    signed = record.get("ledger") or {}
    try:
        now = ledger_head(path)
    except (ValueError, AttributeError):
        return "changed since the job signed it (and is no longer a ledger)"
    if now["entries"] != signed.get("entries"):
        return (f"{now['entries']} entries where the job signed {signed.get('entries')}; "
                "entries were removed or added")
    if now["head"] != signed.get("head"):
        return "its last entry is not the one the job signed; the chain was rewritten"
    return "changed since the job signed it"
