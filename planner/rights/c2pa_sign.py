"""C2PA content credentials: sign every rendered file, read the manifest back, verify it.

Signing uses a certificate chain and key from ``KANTOKU_C2PA_CERT`` / ``KANTOKU_C2PA_KEY``
(production), or else a local CA and leaf created once under ``$KANTOKU_HOME/c2pa``. The local
CA is only trusted where it is passed as ``trust_pem``; c2pa then reports the file "Trusted".

Written against c2pa-python 0.38 (c2pa-rs 0.91): ``Signer.from_info(C2paSignerInfo(...))``,
``Builder.from_json(manifest, context)``, ``Reader.try_create(format, stream, None, context)``
and a ``Context`` whose settings carry ``trust.user_anchors``.

The manifest lives inside the file (a ``uuid`` box in MP4, a chunk in PNG and WAV). Any tool that
writes a new file from the media, a re-encode or a plain remux (what every upload does), leaves
it behind; :func:`verify_file` says so for a file that carries none.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kantoku.services._core.errors import KantokuError, internal, invalid, not_found
from kantoku.services._core.files import write_bytes_atomic
from kantoku.services._core.registry import ModelRegistry

CERT_ENV = "KANTOKU_C2PA_CERT"
KEY_ENV = "KANTOKU_C2PA_KEY"
PROVENANCE_LABEL = "dev.kantoku.provenance"
GENERATOR_NAME = "kantoku"

# IPTC NewsCodes, Digital Source Type (https://cv.iptc.org/newscodes/digitalsourcetype/).
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: A file a model with learned weights produced (a diffusion model's image or clip, a neural
#: voice's line). IPTC: "created algorithmically using a model derived from sampled content".
TRAINED_ALGORITHMIC_MEDIA = _IPTC + "trainedAlgorithmicMedia"
#: A file an algorithm with no training data produced (previz, animatic, rule-based motion).
#: IPTC: "created purely by an algorithm not based on any sampled training data".
ALGORITHMIC_MEDIA = _IPTC + "algorithmicMedia"
#: A file assembled from parts at least one of which a trained model made.
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _IPTC + "compositeWithTrainedAlgorithmicMedia"
#: A file assembled from parts none of which a trained model made. IPTC's term for a "mix or
#: composite of several elements, at least one of which is synthetic" (kantoku's parts are
#: algorithmic media at least); plain ``composite`` ("any of which may or may not be generative
#: AI") would say nothing either way.
COMPOSITE_SYNTHETIC = _IPTC + "compositeSynthetic"
#: The labels that say a trained model made the file or a part of it.
_TRAINED_SOURCES = frozenset({TRAINED_ALGORITHMIC_MEDIA, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA})

MEDIA_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".flac": "audio/flac",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
}
#: Formats c2pa records as an ingredient (by title and format) but can neither sign nor read.
INGREDIENT_ONLY_TYPES: dict[str, str] = {".ogg": "audio/ogg"}

#: Why a file has no manifest, for someone holding a copy of a signed file.
NO_MANIFEST = ("no C2PA manifest: this file carries no content credentials. Re-encoding or "
               "even remuxing a signed file (what every upload to a platform does) removes its "
               "manifest; verify the signed original from the job's folder")

_LOCAL_DIR = "c2pa"
_CA_FILE, _LEAF_FILE, _KEY_FILE = "ca.pem", "leaf.pem", "leaf.key"
_CA_DAYS, _LEAF_DAYS = 3650, 365

_CHANGED = "content changed after signing"
_EXPLAINED: dict[str, str] = {
    "assertion.dataHash.mismatch": _CHANGED,
    "assertion.bmffHash.mismatch": _CHANGED,
    "assertion.boxesHash.mismatch": _CHANGED,
    "assertion.collectionHash.mismatch": _CHANGED,
    "assertion.hashedURI.mismatch": "an assertion changed after signing",
    "claimSignature.mismatch": "the manifest changed after signing",
    "claimSignature.outsideValidity": "signed outside the certificate's validity period",
    "signingCredential.untrusted": "the signing certificate does not chain to a trusted CA",
    "signingCredential.invalid": "the signing certificate is invalid",
    "signingCredential.expired": "the signing certificate has expired",
    "signingCredential.revoked": "the signing certificate was revoked",
    "ingredient.manifest.mismatch": "an ingredient's manifest changed after it was added",
}


@dataclass(frozen=True)
class SigningCredentials:
    """What c2pa signs with: a PEM chain (leaf first, then intermediates / CA) and its key."""

    cert_chain_pem: bytes
    private_key_pem: bytes = field(repr=False)
    alg: str = "es256"

    @property
    def anchor_pem(self) -> bytes:
        """The last certificate of the chain (the local CA), to pass to c2pa as trust anchor."""
        try:
            certs = x509.load_pem_x509_certificates(self.cert_chain_pem)
        except ValueError as exc:
            raise invalid(f"the C2PA signing certificate chain is not PEM ({exc})",
                          reason="C2PA_CREDENTIALS_INVALID") from exc
        return certs[-1].public_bytes(serialization.Encoding.PEM)


# --- credentials ---------------------------------------------------------------------------


def signing_credentials(home: Path) -> SigningCredentials:
    """The credentials kantoku signs with.

    Production: ``KANTOKU_C2PA_CERT`` (PEM chain, leaf first) and ``KANTOKU_C2PA_KEY`` (PEM
    private key) name files. Otherwise a local CA (ECDSA P-256, 10 years) and a leaf
    (1 year) are created on first use under ``home / "c2pa"`` and reused afterwards.

    Args:
        home: The kantoku home (``core_settings().home_dir``).

    Returns:
        The certificate chain, private key and signing algorithm.

    Raises:
        KantokuError: INVALID_REQUEST when a variable is set but its file is missing, unreadable
            or not PEM, or only one of the two is set, or the local leaf has expired.
    """
    cert_env, key_env = os.environ.get(CERT_ENV, ""), os.environ.get(KEY_ENV, "")
    if cert_env or key_env:
        return _production_credentials(cert_env, key_env)
    return _local_credentials(home / _LOCAL_DIR)


def _production_credentials(cert_env: str, key_env: str) -> SigningCredentials:
    for name, value in ((CERT_ENV, cert_env), (KEY_ENV, key_env)):
        if not value:
            other = KEY_ENV if name == CERT_ENV else CERT_ENV
            raise invalid(f"{other} is set but {name} is not: set both (PEM files) or neither",
                          reason="C2PA_CREDENTIALS_MISSING", variable=name)
    chain = _read_env_file(CERT_ENV, Path(cert_env))
    key = _read_env_file(KEY_ENV, Path(key_env))
    try:
        x509.load_pem_x509_certificates(chain)
    except ValueError as exc:
        raise invalid(f"{CERT_ENV}={cert_env}: not a PEM certificate chain ({exc})",
                      reason="C2PA_CREDENTIALS_INVALID", variable=CERT_ENV) from exc
    return SigningCredentials(chain, key, _alg_for_key(key, f"{KEY_ENV}={key_env}"))


def _read_env_file(variable: str, path: Path) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except FileNotFoundError as exc:
        raise invalid(f"{variable}={path}: no such file", reason="C2PA_CREDENTIALS_MISSING",
                      variable=variable) from exc
    except OSError as exc:
        raise invalid(f"{variable}={path}: cannot read it ({exc.strerror})",
                      reason="C2PA_CREDENTIALS_MISSING", variable=variable) from exc


def _alg_for_key(key_pem: bytes, where: str) -> str:
    """The c2pa algorithm name for a PEM private key (es256/es384/es512, ps256, ed25519)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise invalid(f"{where}: not an unencrypted PEM private key ({exc})",
                      reason="C2PA_CREDENTIALS_INVALID") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        bits = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in bits:
            return bits[key.curve.name]
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise invalid(f"{where}: unsupported key type for C2PA (use EC P-256/384/521, RSA or Ed25519)",
                  reason="C2PA_CREDENTIALS_INVALID")


def installed_anchor(home: Path) -> bytes | None:
    """The CA this installation signs with, to trust by default; None when it has none yet.

    Only reads: the root of ``KANTOKU_C2PA_CERT``'s chain when it is set, else the local CA
    under ``home / "c2pa"`` when one was created. Verifying never creates a signing key.

    Raises:
        KantokuError: INVALID_REQUEST when ``KANTOKU_C2PA_CERT`` names a missing or non-PEM file.
    """
    cert_env = os.environ.get(CERT_ENV, "")
    if cert_env:
        chain = _read_env_file(CERT_ENV, Path(cert_env))
        return SigningCredentials(chain, b"").anchor_pem
    ca = home / _LOCAL_DIR / _CA_FILE
    return ca.read_bytes() if ca.is_file() else None


def signer_name(common_name: str | None, organization: str | None) -> str:
    """How a signer is named to a person: ``CN=kantoku signer, O=kantoku``."""
    parts = [f"CN={common_name}" if common_name else "", f"O={organization}" if organization
             else ""]
    return ", ".join(part for part in parts if part) or "an unnamed signer"


def untrusted_signer(signer: str) -> str:
    """The one line that says a valid signature is not from a CA the user trusts."""
    return f"signed by {signer}, not a CA you trust: pass --trust CHAIN.pem (the signer's CA)"


def _local_credentials(folder: Path) -> SigningCredentials:
    paths = [folder / name for name in (_CA_FILE, _LEAF_FILE, _KEY_FILE)]
    if not all(p.is_file() for p in paths):
        _create_local_chain(folder)
    ca_pem, leaf_pem, key_pem = (p.read_bytes() for p in paths)
    expires = x509.load_pem_x509_certificate(leaf_pem).not_valid_after_utc
    if expires <= dt.datetime.now(dt.UTC):
        raise invalid(f"{folder / _LEAF_FILE}: the local signing certificate expired on "
                      f"{expires:%Y-%m-%d}; move {folder} away to create a new chain",
                      reason="C2PA_CREDENTIALS_EXPIRED")
    return SigningCredentials(leaf_pem + ca_pem, key_pem, "es256")


def _create_local_chain(folder: Path) -> None:
    """Write ca.pem, leaf.pem and leaf.key into a fresh folder, then move it into place.

    The rename is atomic, so two processes racing on first use keep one chain.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".c2pa-", dir=folder.parent))
    try:
        ca_pem, leaf_pem, key_pem = _new_local_chain()
        (staging / _CA_FILE).write_bytes(ca_pem)
        (staging / _LEAF_FILE).write_bytes(leaf_pem)
        fd = os.open(staging / _KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_pem)
        os.rename(staging, folder)  # replaces an empty folder, fails on a non-empty one
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        names = (_CA_FILE, _LEAF_FILE, _KEY_FILE)
        if not all((folder / name).is_file() for name in names):
            raise internal(f"{folder}: cannot create the local C2PA signing chain ({exc}); "
                           "if the folder is incomplete, remove it to create a new one",
                           reason="C2PA_CREDENTIALS_CREATE_FAILED") from exc


def _new_local_chain() -> tuple[bytes, bytes, bytes]:
    """A new CA (10 years) and leaf (1 year) as (ca PEM, leaf PEM, leaf key PKCS#8 PEM)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kantoku local C2PA CA")
    ca = (
        _cert_builder(ca_name, ca_name, ca_key.public_key(), now, _CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        _cert_builder(_name("kantoku signer"), ca_name, leaf_key.public_key(), now, _LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kantoku"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert_builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
                  start: dt.datetime, days: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


# --- signing -------------------------------------------------------------------------------


def media_type(path: Path) -> str:
    """The MIME type c2pa needs for a file, from its suffix.

    Raises:
        KantokuError: INVALID_REQUEST for a suffix kantoku does not sign.
    """
    try:
        return MEDIA_TYPES[path.suffix.lower()]
    except KeyError:
        raise invalid(f"{path}: cannot sign '{path.suffix or 'no suffix'}' files with C2PA "
                      f"(supported: {', '.join(sorted(MEDIA_TYPES))})",
                      reason="C2PA_FORMAT_UNSUPPORTED", file=str(path)) from None


@dataclass(frozen=True)
class Ingredient:
    """A file the signed one was made from, and how it went in.

    ``componentOf``: the file is a part of the signed one (a clip, a dialogue line or the song in
    the video); a ``c2pa.placed`` action names it. ``inputTo``: the file was an input to the
    model step that created the signed one (a keyframe to its clip); the ``c2pa.created``
    action names it.
    """

    path: Path
    relationship: Literal["componentOf", "inputTo"] = "componentOf"
    #: What C2PA readers show for it; the file name when empty.
    title: str = ""


def digital_source_type(*, generated: bool, trained: bool) -> str:
    """The IPTC digital source type of a file kantoku signs.

    Args:
        generated: True for one step's output, False for an assembly of parts (the video).
        trained: True when a model with learned weights made the file or one of its parts.

    Returns:
        trainedAlgorithmicMedia, algorithmicMedia, compositeWithTrainedAlgorithmicMedia or
        compositeSynthetic, as a URI.
    """
    if generated:
        return TRAINED_ALGORITHMIC_MEDIA if trained else ALGORITHMIC_MEDIA
    return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA if trained else COMPOSITE_SYNTHETIC


def made_by_trained_model(record: Mapping[str, Any] | None, registry: ModelRegistry) -> bool:
    """Whether a step's output came from learned weights, judged from its provenance record.

    The record names the step's model and adapters by registry id, and each registry entry says
    whether it has learned weights (``ModelEntry.learned_weights``). A missing record, or an id
    the registry does not know, counts as trained: a file is labelled free of trained models
    only when the registry says so.

    Args:
        record: The step's ProvenanceRecord as a dict with the proto's field names (the ledger's).
        registry: The model registry.

    Returns:
        True when the model or an adapter has learned weights, or when that cannot be told.
    """
    if not record:
        return True
    ids = [record.get("model", {}).get("model_id", "")]
    ids += [use.get("adapter", {}).get("model_id", "") for use in record.get("adapters", [])]
    for model_id in ids:
        try:
            if registry.get(model_id).learned_weights:
                return True
        except KantokuError:
            return True
    return False


def sign_file(
    src: Path,
    dst: Path,
    *,
    title: str,
    generated: bool,
    trained: bool = True,
    assertions: dict[str, Any] | None = None,
    ingredients: Sequence[Path | Ingredient] = (),
    credentials: SigningCredentials,
) -> None:
    """Write a C2PA-signed copy of ``src`` at ``dst``.

    The manifest names kantoku as claim generator, carries ``title``, a ``c2pa.created`` action
    whose digitalSourceType says how the file was made (:func:`digital_source_type`), one
    ``c2pa.placed`` action per ``componentOf`` ingredient, and ``assertions`` as the custom
    ``dev.kantoku.provenance`` assertion. The file counts as trained when ``trained`` says so or
    when an ingredient's manifest says a trained model made it or a part of it (a clip animated
    from a diffusion model's keyframe, a video with a neural voice's line).

    Each ingredient is added from its file, and only read. A signed one's manifest is embedded,
    so the chain can be followed; one whose content or manifest was altered is refused (a signer
    we do not trust alone is not: c2pa records it as untrusted). An unsigned one (a song from its
    holder) is recorded by its title and format.

    ``dst`` must differ from ``src`` (c2pa reads the source while writing the output); it is
    written through a temporary file in its folder and replaced atomically, so a failed signing
    never leaves a half-written ``dst``. Both must have the same suffix.

    Args:
        src: The unsigned (or previously signed) media file.
        dst: Where the signed copy goes.
        title: Human-readable title stored in the manifest.
        generated: True for one step's output, False for an assembly of parts (the video).
        trained: Whether the step's own model has learned weights (:func:`made_by_trained_model`);
            the default claims it, for callers that cannot tell.
        assertions: The step's provenance record (JSON-serializable dict), or None.
        ingredients: Files this one was made from, in order; a plain path is ``componentOf``.
        credentials: From :func:`signing_credentials`.

    Raises:
        KantokuError: NOT_FOUND for a missing src or ingredient; INVALID_REQUEST for
            src == dst, an unsupported or mismatched suffix, a non-JSON provenance record or an
            ingredient whose manifest does not verify, or credentials c2pa rejects (self-signed
            leaf, key not matching the certificate); INTERNAL when c2pa fails otherwise.
    """
    fmt = _check_paths(src, dst)
    parts = [i if isinstance(i, Ingredient) else Ingredient(i) for i in ingredients]
    checked = [_check_ingredient(part.path, credentials) for part in parts]
    trained = trained or any(part_trained for _, part_trained in checked)
    manifest = _manifest(src, title, digital_source_type(generated=generated, trained=trained),
                         assertions, parts)
    with _context(credentials.anchor_pem) as context:
        try:
            with c2pa.Builder.from_json(manifest, context) as builder:
                for index, (part, (part_fmt, _)) in enumerate(zip(parts, checked, strict=True)):
                    _add_ingredient(builder, index, part, part_fmt)
                _sign_to(builder, credentials, fmt, src, dst)
        except c2pa.C2paError.Signature as exc:
            raise invalid(f"{src}: the C2PA signing credentials were rejected ({exc}); the "
                          f"chain ({CERT_ENV}) must start with a CA-issued leaf matching the key "
                          f"({KEY_ENV})", reason="C2PA_CREDENTIALS_INVALID", file=str(src)) from exc
        except c2pa.C2paError as exc:
            raise internal(f"{src}: C2PA signing failed ({exc})", reason="C2PA_SIGN_FAILED",
                           file=str(src)) from exc


def _check_paths(src: Path, dst: Path) -> str:
    if not src.is_file():
        raise not_found(f"{src}: no such file to sign", reason="C2PA_SOURCE_MISSING",
                        file=str(src))
    if dst.resolve() == src.resolve():
        raise invalid(f"{dst}: the signed copy must be a different file than the source",
                      reason="C2PA_SAME_FILE", file=str(dst))
    fmt = media_type(src)
    if dst.suffix.lower() != src.suffix.lower():
        raise invalid(f"{dst}: must have the same suffix as {src.name}",
                      reason="C2PA_FORMAT_MISMATCH", file=str(dst))
    return fmt


def _check_ingredient(path: Path, credentials: SigningCredentials) -> tuple[str, bool]:
    """The ingredient's MIME type, and whether its manifest says a trained model made it."""
    if not path.is_file():
        raise not_found(f"{path}: ingredient file not found", reason="C2PA_INGREDIENT_MISSING",
                        file=str(path))
    if path.suffix.lower() in INGREDIENT_ONLY_TYPES:
        return INGREDIENT_ONLY_TYPES[path.suffix.lower()], False  # c2pa cannot read a manifest
    fmt = media_type(path)
    # Integrity matters; a third-party signer we do not trust is recorded as such, not refused.
    problems, store = _inspect(path, credentials.anchor_pem, require_manifest=False,
                               ignore=frozenset({"signingCredential.untrusted"}))
    if problems:
        raise invalid(f"ingredient {path}: " + "; ".join(problems),
                      reason="C2PA_INGREDIENT_INVALID", file=str(path))
    return fmt, store is not None and _created_source_type(store) in _TRAINED_SOURCES


def _created_source_type(store: dict[str, Any]) -> str:
    """The digitalSourceType of the active manifest's ``c2pa.created`` action, or ""."""
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    return str(action.get("digitalSourceType", ""))
    return ""


def _manifest(src: Path, title: str, source_type: str, assertions: dict[str, Any] | None,
              ingredients: Sequence[Ingredient]) -> dict[str, Any]:
    created: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": source_type}
    inputs = [_ingredient_id(i) for i, part in enumerate(ingredients)
              if part.relationship == "inputTo"]
    if inputs:
        created["parameters"] = {"ingredientIds": inputs}
    actions = [created] + [
        {"action": "c2pa.placed", "parameters": {"ingredientIds": [_ingredient_id(i)]}}
        for i, part in enumerate(ingredients) if part.relationship == "componentOf"]
    manifest_assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions", "data": {"actions": actions}}]
    if assertions is not None:
        try:
            data = json.loads(json.dumps(assertions))
        except (TypeError, ValueError) as exc:
            raise invalid(f"{src}: the provenance record is not JSON-serializable ({exc})",
                          reason="C2PA_ASSERTION_INVALID", file=str(src)) from exc
        manifest_assertions.append({"label": PROVENANCE_LABEL, "data": data})
    return {
        "claim_generator_info": [{"name": GENERATOR_NAME, "version": _version()}],
        "title": title,
        "assertions": manifest_assertions,
    }


def _ingredient_id(index: int) -> str:
    return f"kantoku-ingredient-{index}"


def _version() -> str:
    try:
        return importlib.metadata.version("kantoku")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _add_ingredient(builder: Any, index: int, part: Ingredient, fmt: str) -> None:
    ingredient = {"title": part.title or part.path.name, "relationship": part.relationship,
                  "label": _ingredient_id(index)}
    with part.path.open("rb") as stream:
        builder.add_ingredient(ingredient, fmt, stream)


def _sign_to(builder: Any, credentials: SigningCredentials, fmt: str, src: Path,
             dst: Path) -> None:
    info = c2pa.C2paSignerInfo(credentials.alg.encode(), credentials.cert_chain_pem,
                               credentials.private_key_pem, None)
    # Signed in memory, then written whole: a failed write (a full disk) is raised as itself,
    # naming dst, instead of inside c2pa's stream callbacks as an opaque pointer error.
    dst.parent.mkdir(parents=True, exist_ok=True)
    signed = io.BytesIO()
    with c2pa.Signer.from_info(info) as signer, src.open("rb") as source:
        builder.sign(signer, fmt, source, signed)
    write_bytes_atomic(dst, signed.getvalue())


# --- reading and verifying -----------------------------------------------------------------


@contextlib.contextmanager
def _context(trust_pem: bytes | None) -> Iterator[Any]:
    """A c2pa Context that trusts ``trust_pem`` and never goes to the network."""
    settings: dict[str, Any] = {"verify": {"ocsp_fetch": False, "remote_manifest_fetch": False}}
    if trust_pem is not None:
        try:
            x509.load_pem_x509_certificates(trust_pem)
        except ValueError as exc:
            raise invalid(f"trust_pem is not a PEM certificate ({exc})",
                          reason="C2PA_TRUST_INVALID") from exc
        settings["trust"] = {"user_anchors": trust_pem.decode()}
    with c2pa.Context.from_dict(settings) as context:
        yield context


@contextlib.contextmanager
def _store(path: Path, trust_pem: bytes | None) -> Iterator[tuple[dict[str, Any], str] | None]:
    """The manifest store JSON and validation state of ``path``; None when it has no manifest."""
    fmt = media_type(path)
    with _context(trust_pem) as context, path.open("rb") as stream:
        reader = c2pa.Reader.try_create(fmt, stream, None, context)
        if reader is None:
            yield None
            return
        with reader:
            yield json.loads(reader.json()), reader.get_validation_state() or ""


def read_manifest(path: Path, trust_pem: bytes | None = None) -> dict[str, Any]:
    """The active C2PA manifest of a file, as c2pa's JSON (title, assertions, ingredients...).

    Args:
        path: A signed media file.
        trust_pem: CA certificate(s) to trust while reading (affects only validation details).

    Returns:
        The active manifest dict.

    Raises:
        KantokuError: NOT_FOUND when the file is missing; INVALID_REQUEST when it carries no
            manifest or an unreadable one.
    """
    if not path.is_file():
        raise not_found(f"{path}: no such file", reason="C2PA_FILE_MISSING", file=str(path))
    try:
        with _store(path, trust_pem) as found:
            if found is None:
                raise invalid(f"{path}: {NO_MANIFEST}", reason="C2PA_MANIFEST_MISSING",
                              file=str(path))
            store, _ = found
    except c2pa.C2paError as exc:
        raise invalid(f"{path}: unreadable C2PA manifest ({exc})",
                      reason="C2PA_MANIFEST_INVALID", file=str(path)) from exc
    manifest: dict[str, Any] = store["manifests"][store["active_manifest"]]
    return manifest


def verify_file(path: Path, trust_pem: bytes | None = None) -> list[str]:
    """Check a signed file's C2PA manifest; an empty list means valid (and trusted).

    Every validation failure c2pa reports is a problem, for the file and for its ingredients:
    content altered after signing (``assertion.dataHash.mismatch`` / ``bmffHash.mismatch``),
    manifest altered, certificate expired... A signing certificate that does not chain to
    ``trust_pem`` (``signingCredential.untrusted``) is a problem too, so pass the local CA
    (``SigningCredentials.anchor_pem``) for files kantoku signed with it.

    Args:
        path: The file to check.
        trust_pem: CA certificate(s) (PEM) added as trust anchors; None trusts nothing.

    A file with no manifest at all gets one problem that says so and why a copy may have none
    (:data:`NO_MANIFEST`): re-encoding or remuxing, as every upload does, removes it.

    Returns:
        Human-readable problems, each naming the file, e.g.
        ``"video.mp4: content changed after signing (assertion.bmffHash.mismatch)"``.

    Raises:
        KantokuError: INVALID_REQUEST for an unsupported suffix or a malformed ``trust_pem``.
    """
    found = inspect_file(path, trust_pem)
    return found.problems + ([f"{path.name}: {untrusted_signer(found.signer)}"]
                             if found.signer and not found.trusted else [])


@dataclass(frozen=True)
class FileCheck:
    """What :func:`inspect_file` found: integrity problems, and who signed, trusted or not."""

    problems: list[str]
    #: The signer as :func:`signer_name` writes it; None for a file with no readable manifest.
    signer: str | None = None
    trusted: bool = False


def inspect_file(path: Path, trust_pem: bytes | None = None) -> FileCheck:
    """A signed file's integrity problems, apart from whether its signer is trusted.

    A signer that does not chain to ``trust_pem`` is not a problem here but ``trusted=False``,
    so a caller checking a whole folder can say it once.
    """
    untrusted = "signingCredential.untrusted"
    problems, store = _inspect(path, trust_pem, require_manifest=True,
                               ignore=frozenset({untrusted}))
    if store is None:
        return FileCheck(problems)
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    info = manifest.get("signature_info") or {}
    trusted = not any(s.get("code") == untrusted for s in _failures(store))
    return FileCheck(problems, signer_name(info.get("common_name"), info.get("issuer")), trusted)


def _inspect(path: Path, trust_pem: bytes | None, *, require_manifest: bool,
             ignore: frozenset[str] = frozenset()) -> tuple[list[str], dict[str, Any] | None]:
    """(problems, manifest store) of a file; the store is None when there is none to read."""
    if not path.is_file():
        return [f"{path.name}: file not found"], None
    try:
        with _store(path, trust_pem) as found:
            if found is None:
                return [f"{path.name}: {NO_MANIFEST}"] if require_manifest else [], None
            store, state = found
    except c2pa.C2paError as exc:
        return [f"{path.name}: unreadable C2PA manifest ({exc})"], None
    problems = [_describe(path.name, status, trust_pem) for status in _failures(store)
                if status.get("code") not in ignore]
    if not problems and not ignore and state not in ("Valid", "Trusted"):
        problems.append(f"{path.name}: C2PA validation state is {state or 'unknown'}")
    return problems, store


def _failures(store: dict[str, Any]) -> list[dict[str, Any]]:
    """Failure statuses of the active manifest and of each ingredient (as read now)."""
    results = store.get("validation_results")
    if not results:
        return list(store.get("validation_status") or [])
    failures = list(results.get("activeManifest", {}).get("failure", []))
    for delta in results.get("ingredientDeltas", []):
        failures += [{**status, "ingredient": True}
                     for status in delta.get("validationDeltas", {}).get("failure", [])]
    return failures


def _describe(name: str, status: dict[str, Any], trust_pem: bytes | None) -> str:
    code = str(status.get("code", "unknown"))
    text = _EXPLAINED.get(code) or str(status.get("explanation") or "validation failed")
    if code == "signingCredential.untrusted" and trust_pem is None:
        text += " (no trust anchor was given)"
    if status.get("ingredient"):
        text = f"ingredient: {text}"
    return f"{name}: {text} ({code})"


__all__ = [
    "ALGORITHMIC_MEDIA",
    "CERT_ENV",
    "COMPOSITE_SYNTHETIC",
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "INGREDIENT_ONLY_TYPES",
    "KEY_ENV",
    "MEDIA_TYPES",
    "NO_MANIFEST",
    "PROVENANCE_LABEL",
    "TRAINED_ALGORITHMIC_MEDIA",
    "FileCheck",
    "Ingredient",
    "SigningCredentials",
    "digital_source_type",
    "inspect_file",
    "installed_anchor",
    "made_by_trained_model",
    "media_type",
    "read_manifest",
    "sign_file",
    "signer_name",
    "signing_credentials",
    "untrusted_signer",
    "verify_file",
]
