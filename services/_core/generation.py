"""What the generative services (image, video) share: model choice, size rules, ListModels,
GetCapacity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kantoku.services._core.errors import invalid, not_found
from kantoku.v1 import common_pb2

MIN_SIZE_PX, MAX_SIZE_PX = 16, 2048
#: What a standalone server answers to GetCapacity: no replicas to report; the caller decides
#: (Ray Serve hosting answers for its deployment instead: services/hosting.py).
STANDALONE_CAPACITY = common_pb2.GetCapacityResponse(hosted=False)


def pick_backend(backends: Mapping[str, Any], model_id: str) -> Any:
    """The backend serving `model_id`; NOT_FOUND lists what is served."""
    if model_id not in backends:
        raise not_found(f"model_id: {model_id!r} is not served here; available: "
                        f"{', '.join(sorted(backends))}", reason="MODEL_NOT_FOUND",
                        model_id=model_id)
    return backends[model_id]


def list_models(backends: Mapping[str, Any], default_model_id: str
                ) -> common_pb2.ListModelsResponse:
    return common_pb2.ListModelsResponse(models=[b.entry.to_card() for b in backends.values()],
                                         default_model_id=default_model_id)


def check_size_range(width: int, height: int) -> None:
    for name, value in (("width_px", width), ("height_px", height)):
        if not MIN_SIZE_PX <= value <= MAX_SIZE_PX:
            raise invalid(f"{name}: {value} is outside {MIN_SIZE_PX}..{MAX_SIZE_PX}",
                          reason="SIZE_OUT_OF_RANGE")


def check_size_multiple(model_id: str, multiple: int, width: int, height: int) -> None:
    """Refuse sizes the model cannot honour; never round silently."""
    for name, value in (("width_px", width), ("height_px", height)):
        if value % multiple:
            raise invalid(f"{name}: {value} is not a multiple of {multiple}, which {model_id} "
                          "requires", reason="SIZE_NOT_MULTIPLE")


#: Video pipelines that make only `step * k + 1` frames, by registry family (pipeline class).
FRAME_STEPS = {"WanPipeline": 4, "WanImageToVideoPipeline": 4, "LTXPipeline": 8,
               "LTXImageToVideoPipeline": 8, "CogVideoXPipeline": 8}


def allowed_frame_count(family: str, frames: int) -> int:
    """The smallest frame count >= `frames` that a model of `family` can make."""
    step = FRAME_STEPS.get(family)
    if step is None or frames % step == 1:
        return frames
    return (frames - 1) // step * step + 1 + step
