"""Render cache: a finished step is never rendered twice.

Every render step has an idempotency key, the sha256 of everything that decides its output
(step kind, model, parameters, seed, and the sha256 of each input asset). The cache maps a key to
the step's result message (which names its output assets by content hash); a hit counts only while
every asset the result names is still in the store with the right bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.files import write_text_atomic
from kantoku.v1 import common_pb2


def message_dict(message: Message) -> dict[str, Any]:
    """A message as JSON-ready data, with the proto's own field names."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def idempotency_key(kind: str, model_id: str, request: Message | dict[str, Any]) -> str:
    """sha256 over the step kind, the model and the full request (inputs by their sha256)."""
    body = request if isinstance(request, dict) else message_dict(request)
    canonical = json.dumps({"kind": kind, "model": model_id, "request": body}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def asset_refs(message: Message) -> Iterable[common_pb2.AssetRef]:
    """Every AssetRef inside `message`, at any depth."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        values = value if field.is_repeated else [value]
        for item in values:
            if not isinstance(item, Message):
                continue  # map fields of scalars
            if isinstance(item, common_pb2.AssetRef):
                yield item
            else:
                yield from asset_refs(item)


class RenderCache:
    """Results by idempotency key, in `$KANTOKU_HOME/cache/`, pointing into the asset store."""

    def __init__(self, root: Path, store: AssetStore) -> None:
        self.root = root
        self.store = store
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, types: Mapping[str, type[Message]],
            notes: list[str] | None = None) -> dict[str, Message] | None:
        """The cached messages of step `key` (name -> message of the given type), or None.

        An entry that cannot be used (unreadable, or naming an asset that is gone or corrupt)
        is a miss and is dropped, so the step renders again; a corrupt asset is quarantined by
        the store, and what happened is appended to `notes`.
        """
        path = self._path(key)
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text())
            parts = {name: json_format.ParseDict(document[name], kind())
                     for name, kind in types.items()}
            for message in parts.values():
                for ref in asset_refs(message):
                    if ref.uri.startswith("asset://") and ref.sha256:
                        self.store.read_bytes(ref)  # raises if missing or altered
        except (OSError, ValueError, KeyError, json_format.ParseError, KantokuError) as exc:
            path.unlink(missing_ok=True)
            if notes is not None and isinstance(exc, KantokuError) \
                    and exc.reason == "ASSET_CORRUPT":
                uri = exc.metadata.get("uri")
                notes.append(f"{uri} was corrupt in the asset store: quarantined, rendered again")
            return None
        return parts

    def put(self, key: str, parts: Mapping[str, Message]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {name: message_dict(message) for name, message in parts.items()}
        write_text_atomic(path, json.dumps(document, ensure_ascii=False))
