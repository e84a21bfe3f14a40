"""ImageService: proto <-> domain only. Checks every input before any compute is spent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import invalid
from kantoku.services._core.generation import (
    STANDALONE_CAPACITY,
    check_size_range,
    list_models,
    pick_backend,
)
from kantoku.services._core.provenance import StepRecorder
from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.rpc import rpc
from kantoku.services._core.streaming import run_with_progress
from kantoku.services.image.backend import (
    Adapter,
    Character,
    ImageBackend,
    ImageJob,
    Reference,
    Shot,
)
from kantoku.v1 import common_pb2, image_pb2, image_pb2_grpc

SERVICE_NAME = image_pb2.DESCRIPTOR.services_by_name["ImageService"].full_name
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 200


def enum_name(value: int, enum: Any, prefix: str, default: str) -> str:
    """SHOT_SIZE_CLOSE_UP -> 'close_up'; UNSPECIFIED -> default."""
    name = enum.Name(value)
    return default if name.endswith("UNSPECIFIED") else name[len(prefix):].lower()


class ImageServicer(image_pb2_grpc.ImageServiceServicer):
    def __init__(self, backends: dict[str, ImageBackend], store: AssetStore,
                 registry: ModelRegistry, default_model_id: str = "previz-v1") -> None:
        self.backends = backends
        self.store = store
        self.registry = registry
        self.default_model_id = default_model_id

    @rpc
    async def ListModels(self, request: common_pb2.ListModelsRequest,
                         grpc_context: Any = None) -> common_pb2.ListModelsResponse:
        return list_models(self.backends, self.default_model_id)

    @rpc
    async def GetCapacity(self, request: common_pb2.GetCapacityRequest,
                          grpc_context: Any = None) -> common_pb2.GetCapacityResponse:
        return STANDALONE_CAPACITY

    @rpc
    async def GenerateImage(self, request: image_pb2.GenerateImageRequest,
                            grpc_context: Any = None
                            ) -> AsyncIterator[image_pb2.GenerateImageResponse]:
        backend: ImageBackend = pick_backend(self.backends,
                                             request.model_id or self.default_model_id)
        job = self._job(request, backend)
        backend.check(job)
        inputs = [r.image for r in request.references]
        recorder = StepRecorder("image", SERVICE_NAME, backend.entry.to_card(), backend.device,
                                _parameters(request, job), inputs, seed=request.seed,
                                weights=await asyncio.to_thread(backend.weights))
        for adapter in job.adapters:
            recorder.record.adapters.add(adapter=adapter.entry.to_card(), weight=adapter.weight)
        reference_adapter = backend.reference_adapter()
        if reference_adapter is not None:  # an IP-Adapter reads each reference image
            for reference in job.references:
                recorder.record.adapters.add(adapter=reference_adapter, weight=reference.weight)
        rendered = None
        async for event in run_with_progress(backend.generate, job):
            if isinstance(event, common_pb2.Progress):
                yield image_pb2.GenerateImageResponse(progress=event)
            else:
                rendered = event
        assert rendered is not None
        recorder.record.parameters.update(rendered.parameters)
        image = self.store.put_bytes(rendered.png, "image/png")
        layers = [common_pb2.ImageLayer(name=name, image=self.store.put_bytes(png, "image/png"),
                                        depth=depth) for name, png, depth in rendered.layers]
        yield image_pb2.GenerateImageResponse(result=image_pb2.ImageResult(
            image=image, layers=layers, provenance=recorder.finish(image)))

    def _job(self, request: image_pb2.GenerateImageRequest, backend: ImageBackend) -> ImageJob:
        width = request.width_px if request.HasField("width_px") else 720
        height = request.height_px if request.HasField("height_px") else 1280
        check_size_range(width, height)
        if len(request.prompt) > MAX_PROMPT_CHARS:
            raise invalid(f"prompt: {len(request.prompt)} characters is over the "
                          f"{MAX_PROMPT_CHARS}-character limit", reason="PROMPT_TOO_LONG")
        if not request.prompt.strip() and not request.shot.characters \
                and not request.shot.location:
            raise invalid("prompt: empty; describe the picture or pass a shot spec",
                          reason="PROMPT_EMPTY")
        if not 0 <= request.steps <= MAX_STEPS:
            raise invalid(f"steps: {request.steps} is outside 0..{MAX_STEPS}",
                          reason="STEPS_OUT_OF_RANGE")
        if request.guidance_scale < 0:
            raise invalid("guidance_scale: must be >= 0", reason="GUIDANCE_OUT_OF_RANGE")
        references = tuple(self._reference(i, r, backend) for i, r in
                           enumerate(request.references))
        adapters = tuple(self._adapter(i, a, backend) for i, a in enumerate(request.adapters))
        shot = shot_of(request.shot)
        return ImageJob(request.prompt, width, height, request.seed, shot, request.negative_prompt,
                        request.steps, request.guidance_scale, references, adapters)

    def _reference(self, index: int, ref: image_pb2.ReferenceImage,
                   backend: ImageBackend) -> Reference:
        path = self.store.resolve(ref.image.uri)
        self.store.read_bytes(ref.image)  # checks the hash
        if not backend.supports_references:
            raise invalid(f"references[{index}]: {backend.entry.id} takes no reference images"
                          f"{backend.references_note}", reason="REFERENCES_UNSUPPORTED")
        return Reference(path, ref.character_name, ref.weight or 1.0)

    def _adapter(self, index: int, adapter: image_pb2.LoraAdapter,
                 backend: ImageBackend) -> Adapter:
        if not backend.supports_adapters:
            raise invalid(f"adapters[{index}]: {backend.entry.id} takes no LoRA adapters",
                          reason="ADAPTERS_UNSUPPORTED")
        entry = self.registry.reloaded().get(adapter.adapter_id, kind="adapter")
        if not entry.path:
            raise invalid(f"adapters[{index}]: {entry.id} has no path in the registry",
                          reason="ADAPTER_PATH_MISSING")
        return Adapter(entry, Path(entry.path), adapter.weight or 1.0)


def shot_of(spec: image_pb2.ShotSpec) -> Shot:
    """A request's shot spec as the backends take it (unset enums get their defaults)."""
    return Shot(
        shot_size=enum_name(spec.shot_size, image_pb2.ShotSize, "SHOT_SIZE_", "medium"),
        camera_angle=enum_name(spec.camera_angle, image_pb2.CameraAngle, "CAMERA_ANGLE_",
                               "eye_level"),
        characters=tuple(Character(c.name, c.description) for c in spec.characters),
        location=spec.location, time_of_day=enum_name(spec.time_of_day, image_pb2.TimeOfDay,
                                                      "TIME_OF_DAY_", "day"),
        mood=spec.mood, caption=spec.caption)


def _parameters(request: image_pb2.GenerateImageRequest, job: ImageJob) -> dict[str, Any]:
    return {"prompt": job.prompt, "negative_prompt": job.negative_prompt,
            "width_px": job.width_px, "height_px": job.height_px, "steps": job.steps,
            "guidance_scale": job.guidance_scale, "shot_size": job.shot.shot_size,
            "camera_angle": job.shot.camera_angle, "location": job.shot.location,
            "time_of_day": job.shot.time_of_day, "mood": job.shot.mood,
            "characters": [c.name for c in job.shot.characters]}
