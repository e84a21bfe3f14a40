"""Flow-matching diffusion transformers from diffusers: FLUX.1, Stable Diffusion 3.x, Sana.

One pipeline per replica, loaded once from a registered directory (safetensors only, offline).
Sizes that the model cannot honour are refused, never rounded.
"""

from __future__ import annotations

import io
import threading
from typing import Any

from kantoku.services._core.diffusers_loading import (
    load_pipeline,
    step_callback,
    verified_weights,
)
from kantoku.services._core.errors import invalid
from kantoku.services._core.registry import ModelEntry, WeightsHasher
from kantoku.services.image.backend import ImageBackend, ImageJob, ProgressFn, RenderedImage
from kantoku.v1 import common_pb2

DEFAULT_STEPS = {"FluxPipeline": 28, "StableDiffusion3Pipeline": 28, "SanaPipeline": 20}


def _pipelines() -> dict[str, Any]:
    from diffusers import FluxPipeline, SanaPipeline, StableDiffusion3Pipeline

    return {"FluxPipeline": FluxPipeline, "StableDiffusion3Pipeline": StableDiffusion3Pipeline,
            "SanaPipeline": SanaPipeline}


class DiffusersImageBackend(ImageBackend):
    supports_adapters = True

    def __init__(self, entry: ModelEntry, hasher: WeightsHasher, device: str = "cpu",
                 dtype: str = "float32") -> None:
        self.entry = entry
        self.device = device
        self._weights = verified_weights(entry, hasher)
        self.pipeline = load_pipeline(entry, _pipelines(), device, dtype)
        self.kind = type(self.pipeline).__name__
        self.size_multiple = _size_multiple(self.pipeline, self.kind)
        self._lock = threading.Lock()  # one generation at a time on this pipeline

    def weights(self) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def check(self, job: ImageJob) -> None:
        super().check(job)
        if job.negative_prompt and self.kind == "FluxPipeline" and job.guidance_scale <= 1:
            raise invalid("negative_prompt: FLUX uses it only with guidance_scale > 1 (true CFG)",
                          reason="NEGATIVE_PROMPT_UNUSED")

    def generate(self, job: ImageJob, progress: ProgressFn) -> RenderedImage:
        import torch

        steps = job.steps or DEFAULT_STEPS[self.kind]
        kwargs: dict[str, Any] = {
            "prompt": job.prompt, "height": job.height_px, "width": job.width_px,
            "num_inference_steps": steps,
            "generator": torch.Generator(device="cpu").manual_seed(job.seed),
            "callback_on_step_end": step_callback(progress, steps),
        }
        if job.guidance_scale:
            kwargs["guidance_scale"] = job.guidance_scale
        if job.negative_prompt:
            kwargs["negative_prompt"] = job.negative_prompt
            if self.kind == "FluxPipeline":
                kwargs["true_cfg_scale"] = job.guidance_scale
        if self.kind == "SanaPipeline":
            kwargs["use_resolution_binning"] = False  # exact sizes; we refuse the rest
        with self._lock:
            names = self._apply_adapters(job)
            try:
                image = self.pipeline(**kwargs).images[0]
            finally:
                if names:
                    self.pipeline.unload_lora_weights()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return RenderedImage(buffer.getvalue(), [], {
            "pipeline": self.kind, "steps": steps, "scheduler": type(
                self.pipeline.scheduler).__name__, "device": self.device})

    def _apply_adapters(self, job: ImageJob) -> list[str]:
        names = []
        for adapter in job.adapters:
            name = adapter.entry.id.replace(".", "_").replace("/", "_")
            self.pipeline.load_lora_weights(str(adapter.path), adapter_name=name)
            names.append(name)
        if names:
            self.pipeline.set_adapters(names, [a.weight for a in job.adapters])
        return names


def _size_multiple(pipeline: Any, kind: str) -> int:
    if kind == "FluxPipeline":
        return int(pipeline.vae_scale_factor) * 2  # latents are packed 2x2
    if kind == "StableDiffusion3Pipeline":
        return int(pipeline.vae_scale_factor) * int(pipeline.patch_size)
    return 32  # Sana refuses anything else once resolution binning is off

