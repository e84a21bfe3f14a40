"""Content-addressed asset store: sha256 -> blob under $KANTOKU_HOME/assets.

URIs look like `asset://sha256/<hex>`. Anything that does not resolve to a blob inside the store
is refused, so a request can never make a service read an arbitrary file.

Every read checks the blob's bytes against its name: `read_bytes` for bytes, `checked_path`
for a file another program opens (`resolve` only locates). A blob whose bytes no longer match
its name (a flipped bit on disk, an edit by hand, a torn write on a shared volume) is moved
aside to `<root>/quarantine/`, never deleted, the moment it is read or put again: the read
fails once, and the next put of the true bytes writes the blob anew, so one bad blob cannot
fail every later job.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import re
import secrets
from pathlib import Path

from kantoku.services._core.errors import KantokuError, invalid, not_found
from kantoku.services._core.files import write_bytes_atomic
from kantoku.v1 import common_pb2

URI_PREFIX = "asset://sha256/"
_HEX = re.compile(r"^[0-9a-f]{64}$")
QUARANTINE_DIR = "quarantine"
_EXTENSIONS = {"audio/wav": ".wav", "application/json": ".json", "image/png": ".png",
               "video/mp4": ".mp4", "text/plain": ".txt"}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class AssetStore:
    """Blobs at `<root>/<hex[:2]>/<hex><ext>`; writes are atomic and idempotent."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def put_bytes(self, data: bytes, media_type: str) -> common_pb2.AssetRef:
        digest = sha256_bytes(data)
        path = self._path_for(digest, media_type)
        if path.exists() and sha256_file(path) != digest:
            self.quarantine(path)
        if not path.exists():
            write_bytes_atomic(path, data)
        return common_pb2.AssetRef(
            uri=URI_PREFIX + digest, sha256=digest, media_type=media_type, size_bytes=len(data)
        )

    def put_file(self, source: Path, media_type: str | None = None) -> common_pb2.AssetRef:
        guessed = mimetypes.guess_type(source.name)[0]
        media_type = media_type or guessed or "application/octet-stream"
        return self.put_bytes(Path(source).read_bytes(), media_type)

    def resolve(self, uri: str) -> Path:
        """Path of the blob behind `uri`; NOT_FOUND or INVALID_ARGUMENT when it is not ours."""
        if not uri.startswith(URI_PREFIX):
            raise invalid(
                f"asset uri {uri!r} is not in the asset store; upload it and pass "
                f"'{URI_PREFIX}<sha256>'",
                reason="ASSET_OUTSIDE_STORE",
                uri=uri,
            )
        digest = uri[len(URI_PREFIX):]
        if not _HEX.match(digest):
            raise invalid(f"asset uri {uri!r} must end in 64 lowercase hex digits",
                          reason="ASSET_URI_MALFORMED", uri=uri)
        matches = sorted((self.root / digest[:2]).glob(digest + "*"))
        if not matches:
            raise not_found(f"asset {uri} is not in the store at {self.root}",
                            reason="ASSET_NOT_FOUND", uri=uri)
        path = matches[0].resolve()
        if self.root not in path.parents:  # a symlink planted in the store
            raise invalid(f"asset {uri} points outside the store", reason="ASSET_OUTSIDE_STORE")
        return path

    def read_bytes(self, ref: common_pb2.AssetRef) -> bytes:
        """Bytes of `ref`, checked against its sha256.

        Raises:
            KantokuError: ASSET_CORRUPT when the blob's bytes do not match its name (the blob
                is quarantined first); ASSET_HASH_MISMATCH when the ref names other bytes.
        """
        path = self.resolve(ref.uri)
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != ref.uri[len(URI_PREFIX):]:
            raise self._corrupt(ref.uri, path, actual)
        if ref.sha256 and ref.sha256 != actual:
            raise invalid(f"asset {ref.uri} has sha256 {actual}, not {ref.sha256} as the ref says",
                          reason="ASSET_HASH_MISMATCH", uri=ref.uri)
        return data

    def checked_path(self, uri: str) -> Path:
        """Path of the blob behind `uri` once its bytes are checked against its sha256, for
        readers that open the file themselves (ffmpeg, c2pa).

        Raises:
            KantokuError: as :meth:`resolve`; ASSET_CORRUPT when the blob's bytes do not match
                its name (the blob is quarantined first).
        """
        path = self.resolve(uri)
        actual = sha256_file(path)
        if actual != uri[len(URI_PREFIX):]:
            raise self._corrupt(uri, path, actual)
        return path

    def _corrupt(self, uri: str, path: Path, actual: str) -> KantokuError:
        moved = self.quarantine(path)
        return invalid(f"asset {uri} was corrupt in the store (its bytes hash to {actual}) and "
                       f"was moved to {moved}; run the job again to render it anew",
                       reason="ASSET_CORRUPT", uri=uri)

    def quarantine(self, path: Path) -> Path:
        """Move a corrupt blob to `<root>/quarantine/` (kept for inspection); returns where."""
        target = self.root / QUARANTINE_DIR / f"{path.name}.{secrets.token_hex(4)}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # another reader moved it first
            os.replace(path, target)
        return target

    def _path_for(self, digest: str, media_type: str) -> Path:
        ext = _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ""
        return self.root / digest[:2] / f"{digest}{ext}"
