"""The video service's client side: generate a clip, put its keyframe and layers into the store.

Inputs and outputs travel as AssetRefs through the shared asset store ($KANTOKU_HOME/assets), so
the client and the services must share KANTOKU_HOME (the local stack and standalone servers do).
"""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.client import ProgressFn, ServiceClient, store, stream_result
from kantoku.services._core.errors import invalid
from kantoku.v1 import common_pb2, image_pb2, video_pb2


async def generate_video(client: ServiceClient, request: video_pb2.GenerateVideoRequest,
                         on_progress: ProgressFn | None = None) -> video_pb2.VideoResult:
    return await stream_result(client.generate_video(request), on_progress, "video")


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
