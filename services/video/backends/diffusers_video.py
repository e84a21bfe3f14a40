"""Video diffusion models from diffusers: Wan 2.x (text- and image-to-video), LTX-Video,
CogVideoX. One pipeline per replica, loaded once; frame counts and sizes the model cannot honour
are refused with the rule, never rounded (the pipelines themselves would round silently)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from kantoku.services._core.diffusers_loading import (
    load_pipeline,
    step_callback,
    verified_weights,
)
from kantoku.services._core.errors import invalid
from kantoku.services._core.generation import FRAME_STEPS
from kantoku.services._core.registry import ModelEntry, WeightsHasher
from kantoku.services.video.backend import ProgressFn, RenderedVideo, VideoBackend, VideoJob
from kantoku.services.video.encode import encode_mp4
from kantoku.v1 import common_pb2


@dataclass(frozen=True)
class Rules:
    size_multiple: int
    frame_step: int  # frames must be frame_step * k + 1
    native_fps: float
    default_steps: int
    image_to_video: bool = False


RULES = {
    "WanPipeline": Rules(16, FRAME_STEPS["WanPipeline"], 16.0, 30),
    "WanImageToVideoPipeline": Rules(16, FRAME_STEPS["WanImageToVideoPipeline"], 16.0, 30,
                                     image_to_video=True),
    "LTXPipeline": Rules(32, FRAME_STEPS["LTXPipeline"], 24.0, 40),
    "LTXImageToVideoPipeline": Rules(32, FRAME_STEPS["LTXImageToVideoPipeline"], 24.0, 40,
                                     image_to_video=True),
    # The code only checks multiples of 8, but the transformer needs 16; frames decode in pairs
    # of latents, so only 8k + 1 frames come back as asked.
    "CogVideoXPipeline": Rules(16, FRAME_STEPS["CogVideoXPipeline"], 8.0, 50),
}


def _pipelines() -> dict[str, Any]:
    import diffusers

    return {name: getattr(diffusers, name) for name in RULES}


class DiffusersVideoBackend(VideoBackend):
    def __init__(self, entry: ModelEntry, hasher: WeightsHasher, device: str = "cpu",
                 dtype: str = "float32") -> None:
        self.entry = entry
        self.device = device
        self._weights = verified_weights(entry, hasher)
        self.pipeline = load_pipeline(entry, _pipelines(), device, dtype)
        self.kind = type(self.pipeline).__name__
        self.rules = RULES[self.kind]
        self.size_multiple = self.rules.size_multiple
        self.default_fps = self.rules.native_fps
        self.needs_keyframe = self.rules.image_to_video
        self._lock = threading.Lock()

    def weights(self) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def check(self, job: VideoJob) -> None:
        super().check(job)
        step = self.rules.frame_step
        frames = job.frame_count
        if frames % step != 1:
            below = max(1, (frames - 1) // step * step + 1)
            above = below + step
            raise invalid(
                f"duration_s x fps = {frames} frames, but {self.entry.id} ({self.kind}) makes "
                f"{step}k+1 frames; use {below} or {above} frames (e.g. duration_s "
                f"{below / job.fps:.3f} or {above / job.fps:.3f} at {job.fps:g} fps)",
                reason="FRAME_COUNT_UNSUPPORTED")
        if job.keyframe is not None and not self.rules.image_to_video \
                and not self.kind.startswith("LTX"):
            raise invalid(f"keyframe: {self.entry.id} ({self.kind}) is text-to-video; drop the "
                          "keyframe or use an image-to-video model", reason="KEYFRAME_UNSUPPORTED")
        if not job.prompt.strip():
            raise invalid(f"prompt: {self.entry.id} needs a text prompt", reason="PROMPT_EMPTY")

    def generate(self, job: VideoJob, progress: ProgressFn) -> RenderedVideo:
        import torch

        steps = job.steps or self.rules.default_steps
        kwargs: dict[str, Any] = {
            "prompt": job.prompt, "height": job.height_px, "width": job.width_px,
            "num_frames": job.frame_count, "num_inference_steps": steps, "output_type": "np",
            "generator": torch.Generator(device="cpu").manual_seed(job.seed),
            "callback_on_step_end": step_callback(progress, steps),
        }
        if job.negative_prompt:
            kwargs["negative_prompt"] = job.negative_prompt
        if job.guidance_scale:
            kwargs["guidance_scale"] = job.guidance_scale
        pipeline = self.pipeline
        if job.keyframe is not None:
            with Image.open(job.keyframe) as still:
                kwargs["image"] = still.convert("RGB").resize((job.width_px, job.height_px))
            if self.kind == "LTXPipeline":
                from diffusers import LTXImageToVideoPipeline

                pipeline = LTXImageToVideoPipeline.from_pipe(self.pipeline)
        with self._lock:
            frames = pipeline(**kwargs).frames[0]
        pixels = (np.clip(np.asarray(frames), 0, 1) * 255).round().astype(np.uint8)
        mp4, count = encode_mp4(iter(pixels), job.fps, job.width_px, job.height_px,
                                on_frame=lambda n: progress("encoding", n, len(pixels)))
        return RenderedVideo(mp4, count, job.fps, {
            "pipeline": type(pipeline).__name__, "steps": steps, "image_to_video":
            job.keyframe is not None, "device": self.device})

