"""VideoService: proto <-> domain only. Checks every input before any compute is spent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import invalid
from kantoku.services._core.generation import (
    STANDALONE_CAPACITY,
    check_size_range,
    list_models,
    pick_backend,
)
from kantoku.services._core.provenance import StepRecorder
from kantoku.services._core.rpc import rpc
from kantoku.services._core.streaming import run_with_progress
from kantoku.services.video.backend import Layer, VideoBackend, VideoJob
from kantoku.v1 import common_pb2, video_pb2, video_pb2_grpc

SERVICE_NAME = video_pb2.DESCRIPTOR.services_by_name["VideoService"].full_name
MAX_DURATION_S, MIN_DURATION_S = 60.0, 0.1
MAX_FPS = 120.0


class VideoServicer(video_pb2_grpc.VideoServiceServicer):
    def __init__(self, backends: dict[str, VideoBackend], store: AssetStore,
                 default_model_id: str = "animatic-v1") -> None:
        self.backends = backends
        self.store = store
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
    async def GenerateVideo(self, request: video_pb2.GenerateVideoRequest,
                            grpc_context: Any = None
                            ) -> AsyncIterator[video_pb2.GenerateVideoResponse]:
        backend: VideoBackend = pick_backend(self.backends,
                                             request.model_id or self.default_model_id)
        job, inputs = self._job(request, backend)
        backend.check(job)
        recorder = StepRecorder("video", SERVICE_NAME, backend.entry.to_card(), backend.device, {
            "prompt": job.prompt, "negative_prompt": job.negative_prompt,
            "camera_move": job.camera_move, "duration_s": job.duration_s, "fps": job.fps,
            "width_px": job.width_px, "height_px": job.height_px, "steps": job.steps,
            "guidance_scale": job.guidance_scale, "frame_count": job.frame_count,
        }, inputs, seed=request.seed, weights=await asyncio.to_thread(backend.weights))
        rendered = None
        async for event in run_with_progress(backend.generate, job):
            if isinstance(event, common_pb2.Progress):
                yield video_pb2.GenerateVideoResponse(progress=event)
            else:
                rendered = event
        assert rendered is not None
        recorder.record.parameters.update(rendered.parameters)
        video = self.store.put_bytes(rendered.mp4, "video/mp4")
        yield video_pb2.GenerateVideoResponse(result=video_pb2.VideoResult(
            video=video, frame_count=rendered.frame_count, fps=rendered.fps,
            duration_s=rendered.frame_count / rendered.fps, provenance=recorder.finish(video)))

    def _job(self, request: video_pb2.GenerateVideoRequest,
             backend: VideoBackend) -> tuple[VideoJob, list[common_pb2.AssetRef]]:
        inputs: list[common_pb2.AssetRef] = []
        keyframe = None
        width = request.width_px if request.HasField("width_px") else None
        height = request.height_px if request.HasField("height_px") else None
        if request.HasField("keyframe") and request.keyframe.uri:
            keyframe = self.store.resolve(request.keyframe.uri)
            self.store.read_bytes(request.keyframe)
            inputs.append(request.keyframe)
            try:
                with Image.open(keyframe) as image:
                    width = image.width if width is None else width
                    height = image.height if height is None else height
            except OSError:
                raise invalid(f"keyframe: {request.keyframe.uri} is not an image; pass a PNG",
                              reason="KEYFRAME_INVALID") from None
        width = 720 if width is None else width
        height = 1280 if height is None else height
        check_size_range(width, height)
        if not MIN_DURATION_S <= request.duration_s <= MAX_DURATION_S:
            raise invalid(f"duration_s: {request.duration_s} is outside "
                          f"{MIN_DURATION_S}..{MAX_DURATION_S}", reason="DURATION_OUT_OF_RANGE")
        fps = request.fps or backend.default_fps
        if not 1 <= fps <= MAX_FPS:
            raise invalid(f"fps: {fps} is outside 1..{MAX_FPS:.0f}", reason="FPS_OUT_OF_RANGE")
        layers = []
        for index, layer in enumerate(request.layers):
            if not 0 <= layer.depth <= 1:
                raise invalid(f"layers[{index}].depth: {layer.depth} is outside 0..1",
                              reason="LAYER_DEPTH_OUT_OF_RANGE")
            path = self.store.resolve(layer.image.uri)
            self.store.read_bytes(layer.image)
            inputs.append(layer.image)
            layers.append(Layer(layer.name or f"layer{index}", path, layer.depth))
        move_name = video_pb2.CameraMove.Name(request.camera_move)
        move = "static" if move_name.endswith("UNSPECIFIED") else \
            move_name[len("CAMERA_MOVE_"):].lower()
        job = VideoJob(keyframe, width, height, request.duration_s, fps, move, tuple(layers),
                       request.prompt, request.negative_prompt, request.seed, request.steps,
                       request.guidance_scale)
        if job.frame_count < 1:
            raise invalid(f"duration_s x fps = {request.duration_s * fps:.2f} frames; need at "
                          "least one", reason="TOO_FEW_FRAMES")
        return job, inputs
