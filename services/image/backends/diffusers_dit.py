"""Flow-matching diffusion transformers from diffusers: FLUX.1, Stable Diffusion 3.x, Sana.

One pipeline per replica, loaded once from a registered directory (safetensors only, offline).
Sizes that the model cannot honour are refused, never rounded.

Reference images go through an IP-Adapter (FLUX: CLIP image encoder, SD3: SigLIP) that the
model's registry entry names (`ip_adapter: ID`). It is loaded once; its attention processors are
switched in only for requests that carry a reference, so the others run exactly as without it.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from kantoku.services._core.diffusers_loading import (
    IMAGE_ENCODER,
    image_encoder_type,
    ip_adapter_weights_name,
    load_pipeline,
    step_callback,
    verified_weights,
)
from kantoku.services._core.errors import invalid
from kantoku.services._core.registry import ModelEntry, WeightsHasher
from kantoku.services.image.backend import (
    ImageBackend,
    ImageJob,
    ProgressFn,
    Reference,
    RenderedImage,
)
from kantoku.v1 import common_pb2

DEFAULT_STEPS = {"FluxPipeline": 28, "StableDiffusion3Pipeline": 28, "SanaPipeline": 20}
#: Pipelines with an IP-Adapter loader, and the image encoder (`model_type`) each one loads.
IP_ADAPTER_ENCODERS = {"FluxPipeline": "clip_vision_model",
                       "StableDiffusion3Pipeline": "siglip_vision_model"}
#: One IP-Adapter, one image: diffusers' FLUX and SD3 loaders take one image per adapter.
MAX_REFERENCES = 1


def _pipelines() -> dict[str, Any]:
    from diffusers import FluxPipeline, SanaPipeline, StableDiffusion3Pipeline

    return {"FluxPipeline": FluxPipeline, "StableDiffusion3Pipeline": StableDiffusion3Pipeline,
            "SanaPipeline": SanaPipeline}


class DiffusersImageBackend(ImageBackend):
    supports_adapters = True

    def __init__(self, entry: ModelEntry, hasher: WeightsHasher, device: str = "cpu",
                 dtype: str = "float32", ip_adapter: ModelEntry | None = None) -> None:
        """`ip_adapter`: the registry entry that `entry.ip_adapter` names, if any."""
        self.entry = entry
        self.device = device
        self._weights = verified_weights(entry, hasher)
        self.pipeline = load_pipeline(entry, _pipelines(), device, dtype)
        self.kind = type(self.pipeline).__name__
        self.size_multiple = _size_multiple(self.pipeline, self.kind)
        self._lock = threading.Lock()  # one generation at a time on this pipeline
        self._ip_card: common_pb2.ModelCard | None = None
        self._plain_processors: dict[str, Any] = {}
        self._ip_processors: dict[str, Any] = {}
        if ip_adapter is not None:
            self._load_ip_adapter(ip_adapter, hasher)
        self.supports_references = self._ip_card is not None
        self.references_note = _references_note(self.kind)

    def weights(self) -> list[common_pb2.WeightsFile]:
        return list(self._weights)

    def reference_adapter(self) -> common_pb2.ModelCard | None:
        return self._ip_card

    def check(self, job: ImageJob) -> None:
        super().check(job)
        if job.negative_prompt and self.kind == "FluxPipeline" and job.guidance_scale <= 1:
            raise invalid("negative_prompt: FLUX uses it only with guidance_scale > 1 (true CFG)",
                          reason="NEGATIVE_PROMPT_UNUSED")
        if len(job.references) > MAX_REFERENCES:
            raise invalid(f"references: {self.entry.id} takes at most {MAX_REFERENCES} reference "
                          f"image per request (one IP-Adapter reads one image); got "
                          f"{len(job.references)}", reason="TOO_MANY_REFERENCES")
        for index, reference in enumerate(job.references):
            if reference.weight <= 0:
                raise invalid(f"references[{index}].weight: {reference.weight:g} must be > 0 "
                              "(0 means 1.0)", reason="REFERENCE_WEIGHT_OUT_OF_RANGE")
            _open_image(reference, index).close()  # refuse non-images before any compute

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
        parameters: dict[str, Any] = {
            "pipeline": self.kind, "steps": steps,
            "scheduler": type(self.pipeline.scheduler).__name__, "device": self.device}
        with self._lock:
            names = self._apply_adapters(job)
            try:
                if job.references:
                    kwargs.update(self._apply_reference(job.references[0], kwargs))
                    parameters["ip_adapter_scale"] = job.references[0].weight
                image = self.pipeline(**kwargs).images[0]
            finally:
                if job.references:
                    self._set_processors(self._plain_processors)
                if names:
                    self.pipeline.unload_lora_weights()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return RenderedImage(buffer.getvalue(), [], parameters)

    def _load_ip_adapter(self, ip_adapter: ModelEntry, hasher: WeightsHasher) -> None:
        """Load the IP-Adapter and its image encoder; keep its processors aside until needed."""
        where = f"{self.entry.id}: ip_adapter {ip_adapter.id}"
        encoder_type = IP_ADAPTER_ENCODERS.get(self.kind)
        if encoder_type is None:
            raise invalid(f"{where}: {self.kind} has no IP-Adapter support; remove `ip_adapter` "
                          "from its registry entry", reason="IP_ADAPTER_UNSUPPORTED")
        if not ip_adapter.path:
            raise invalid(f"{where} has no path in the registry", reason="IP_ADAPTER_PATH_MISSING")
        folder = Path(ip_adapter.path).expanduser()
        weight_name = ip_adapter_weights_name(folder)
        found = image_encoder_type(folder)
        if found != encoder_type:
            raise invalid(f"{where}: {self.kind} needs a {encoder_type} image encoder in "
                          f"{IMAGE_ENCODER}/, not {found!r}", reason="IP_ADAPTER_INCOMPATIBLE")
        card = ip_adapter.to_card()
        del card.weights[:]
        card.weights.extend(verified_weights(ip_adapter, hasher, folder))
        encoder = str(folder.resolve() / IMAGE_ENCODER)  # absolute: diffusers reads it as is
        self._plain_processors = dict(self.pipeline.transformer.attn_processors)
        try:
            if self.kind == "FluxPipeline":
                self.pipeline.load_ip_adapter(
                    str(folder), weight_name=weight_name, local_files_only=True,
                    image_encoder_pretrained_model_name_or_path=encoder,
                    image_encoder_dtype=self.pipeline.transformer.dtype)
            else:
                self.pipeline.load_ip_adapter(str(folder), weight_name=weight_name,
                                              image_encoder_folder=encoder, local_files_only=True)
        except (KeyError, ValueError, RuntimeError, OSError) as exc:
            raise invalid(f"{where} does not fit this {self.kind}: {exc}",
                          reason="IP_ADAPTER_INCOMPATIBLE") from None
        loaded = self.pipeline.transformer.attn_processors  # also the SD3 resampler's own
        self._ip_processors = {name: loaded[name] for name in self._plain_processors}
        self._set_processors(self._plain_processors)
        self._ip_card = card

    def _set_processors(self, processors: dict[str, Any]) -> None:
        transformer = self.pipeline.transformer
        transformer.set_attn_processor({**transformer.attn_processors, **processors})

    def _apply_reference(self, reference: Reference, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Switch the IP-Adapter in at the reference's weight; the call's extra arguments."""
        self._set_processors(self._ip_processors)
        self.pipeline.set_ip_adapter_scale(reference.weight)
        with _open_image(reference, 0) as image:
            extra: dict[str, Any] = {"ip_adapter_image": image.convert("RGB")}
        if "true_cfg_scale" in kwargs:  # FLUX's negative pass sees a black reference
            extra["negative_ip_adapter_image"] = Image.new("RGB", extra["ip_adapter_image"].size)
        return extra

    def _apply_adapters(self, job: ImageJob) -> list[str]:
        names = []
        for adapter in job.adapters:
            name = adapter.entry.id.replace(".", "_").replace("/", "_")
            self.pipeline.load_lora_weights(str(adapter.path), adapter_name=name)
            names.append(name)
        if names:
            self.pipeline.set_adapters(names, [a.weight for a in job.adapters])
        return names


def _open_image(reference: Reference, index: int) -> Image.Image:
    try:
        return Image.open(reference.path)
    except (UnidentifiedImageError, OSError):
        raise invalid(f"references[{index}]: the asset is not an image PIL can read; pass a PNG "
                      "or JPEG", reason="REFERENCE_NOT_AN_IMAGE") from None


def _references_note(kind: str) -> str:
    if kind in IP_ADAPTER_ENCODERS:
        return (f"; {kind} reads them through an IP-Adapter: register one with `kantoku models "
                "add ID --kind ip_adapter` and name it as `ip_adapter: ID` in this model's "
                "registry entry")
    return f"; diffusers has no IP-Adapter for {kind}"


def _size_multiple(pipeline: Any, kind: str) -> int:
    if kind == "FluxPipeline":
        return int(pipeline.vae_scale_factor) * 2  # latents are packed 2x2
    if kind == "StableDiffusion3Pipeline":
        return int(pipeline.vae_scale_factor) * int(pipeline.patch_size)
    return 32  # Sana refuses anything else once resolution binning is off

