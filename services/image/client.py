"""The image service's client side: generate a still, put reference images into the store."""

from __future__ import annotations

from pathlib import Path

from kantoku.services._core.client import ProgressFn, ServiceClient, store, stream_result
from kantoku.services._core.errors import invalid
from kantoku.services._core.inputs import image_bytes
from kantoku.v1 import common_pb2, image_pb2


async def generate_image(client: ServiceClient, request: image_pb2.GenerateImageRequest,
                         on_progress: ProgressFn | None = None) -> image_pb2.ImageResult:
    return await stream_result(client.generate_image(request), on_progress, "image")


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
        if not path.exists():
            raise invalid(f"--reference: {path} is not a file; pass PATH or PATH:CHARACTER",
                          reason="FILE_NOT_FOUND")
        image = store().put_bytes(*image_bytes(path, "--reference"))
        if rights is not None:
            image.rights.CopyFrom(rights)
        references.append(image_pb2.ReferenceImage(image=image, character_name=character,
                                                   weight=weight))
    return references
