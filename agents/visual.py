"""Client-side image and video jobs: call the services, copy results out of the asset store.

Inputs and outputs travel as AssetRefs through the shared asset store ($KANTOKU_HOME/assets), so
the client and the services must share KANTOKU_HOME (the local stack and standalone servers do).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from kantoku.agents.client import ServiceClient
from kantoku.services._core.assets import AssetStore, sha256_file
from kantoku.services._core.errors import internal, invalid
from kantoku.services._core.settings import core_settings
from kantoku.v1 import common_pb2, image_pb2, video_pb2

ProgressFn = Callable[[common_pb2.Progress], None]


def store() -> AssetStore:
    return AssetStore(core_settings().assets_dir)


async def _result(stream: AsyncIterator[Any], on_progress: ProgressFn | None, what: str) -> Any:
    """Report progress events; return the stream's final result."""
    result = None
    async for response in stream:
        if response.HasField("progress") and on_progress:
            on_progress(response.progress)
        elif response.HasField("result"):
            result = response.result
    if result is None:
        raise internal(f"the {what} stream ended without a result; try again",
                       reason="STREAM_INCOMPLETE")
    return result


async def generate_image(client: ServiceClient, request: image_pb2.GenerateImageRequest,
                         on_progress: ProgressFn | None = None) -> image_pb2.ImageResult:
    return await _result(client.generate_image(request), on_progress, "image")


async def generate_video(client: ServiceClient, request: video_pb2.GenerateVideoRequest,
                         on_progress: ProgressFn | None = None) -> video_pb2.VideoResult:
    return await _result(client.generate_video(request), on_progress, "video")


def _document(result: Any) -> dict[str, Any]:
    return json_format.MessageToDict(result, preserving_proto_field_name=True)


def save_result(ref: common_pb2.AssetRef, result: Any, out: Path) -> Path:
    """Copy the asset to `out` and write `out.json` (the result with its provenance)."""
    data = store().read_bytes(ref)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    sidecar = out.with_name(out.name + ".json")
    sidecar.write_text(json.dumps(_document(result), indent=2, ensure_ascii=False))
    return sidecar


def keyframe_inputs(path: Path) -> tuple[common_pb2.AssetRef, list[common_pb2.ImageLayer]]:
    """Put a keyframe into the store; reuse its previz layers when `path.json` lists them."""
    if not path.is_file():
        raise invalid(f"--image: {path} is not a file; pass a PNG", reason="FILE_NOT_FOUND")
    keyframe = store().put_file(path, "image/png")
    layers: list[common_pb2.ImageLayer] = []
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        try:
            result = json_format.ParseDict(json.loads(sidecar.read_text()),
                                           image_pb2.ImageResult(), ignore_unknown_fields=True)
        except (ValueError, json_format.ParseError):
            result = image_pb2.ImageResult()
        if result.image.sha256 == sha256_file(path):  # the sidecar describes this very file
            layers = list(result.layers)
    return keyframe, layers


def reference_inputs(specs: list[str], weight: float = 0.0,
                     rights: common_pb2.RightsInfo | None = None
                     ) -> list[image_pb2.ReferenceImage]:
    """Put each `PATH` or `PATH:CHARACTER` image into the store, as a request's references."""
    references = []
    for spec in specs:
        path, character = Path(spec), ""
        if not path.is_file() and ":" in spec:
            head, _, character = spec.rpartition(":")
            path = Path(head)
        if not path.is_file():
            raise invalid(f"--reference: {path} is not a file; pass PATH or PATH:CHARACTER",
                          reason="FILE_NOT_FOUND")
        image = store().put_file(path)
        if rights is not None:
            image.rights.CopyFrom(rights)
        references.append(image_pb2.ReferenceImage(image=image, character_name=character,
                                                   weight=weight))
    return references
