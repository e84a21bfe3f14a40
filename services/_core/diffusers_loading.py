"""Loading a registered diffusers pipeline directory: safetensors only, hashed, offline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kantoku.services._core.errors import invalid, not_found
from kantoku.services._core.registry import ModelEntry, WeightsHasher
from kantoku.v1 import common_pb2

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
DTYPES = ("float32", "bfloat16", "float16")
IMAGE_ENCODER = "image_encoder"


def model_dir(entry: ModelEntry) -> Path:
    if not entry.path:
        raise invalid(f"{entry.id}: the registry has no path for it; register it with "
                      "`kantoku models add ID --path DIR`", reason="MODEL_PATH_MISSING")
    path = Path(entry.path).expanduser()
    if not (path / "model_index.json").is_file():
        raise not_found(f"{entry.id}: {path} has no model_index.json; pass a diffusers "
                        "pipeline directory (save_pretrained)", reason="MODEL_DIR_INVALID")
    return path


def pipeline_class_name(path: Path) -> str:
    return str(json.loads((path / "model_index.json").read_text())["_class_name"])


def weights_files(path: Path) -> dict[str, Path]:
    """Every weights file under `path`; refuses pickle checkpoints, which can run code on load."""
    pickles = sorted(str(p.relative_to(path)) for p in path.rglob("*")
                     if p.suffix in PICKLE_SUFFIXES and p.is_file())
    if pickles:
        raise invalid(f"{path}: pickle checkpoints are refused ({', '.join(pickles[:3])}); convert "
                      "them to .safetensors", reason="PICKLE_REFUSED")
    files = {str(p.relative_to(path)): p for p in sorted(path.rglob("*.safetensors"))}
    if not files:
        raise invalid(f"{path}: no .safetensors weights found", reason="WEIGHTS_MISSING")
    return files


def verified_weights(entry: ModelEntry, hasher: WeightsHasher) -> list[common_pb2.WeightsFile]:
    return hasher.verify(entry, weights_files(model_dir(entry)))


def ip_adapter_weights_name(path: Path) -> str:
    """The adapter file of an IP-Adapter directory: one top-level .safetensors file beside an
    `image_encoder/` folder (a transformers vision model saved with save_pretrained)."""
    names = sorted(p.name for p in path.glob("*.safetensors")) if path.is_dir() else []
    if len(names) != 1 or not (path / IMAGE_ENCODER / "config.json").is_file():
        raise invalid(f"{path}: an IP-Adapter is a directory with one .safetensors adapter file "
                      f"and an {IMAGE_ENCODER}/ folder (config.json + model.safetensors); found "
                      f"{', '.join(names) or 'no top-level .safetensors'}",
                      reason="IP_ADAPTER_DIR_INVALID")
    return names[0]


def image_encoder_type(path: Path) -> str:
    """`model_type` of an IP-Adapter's image encoder: 'clip_vision_model', 'siglip_vision_model'."""
    config = json.loads((path / IMAGE_ENCODER / "config.json").read_text())
    return str(config.get("model_type", ""))


def step_callback(progress: Callable[[str, int, int], None], total: int) -> Any:
    """A diffusers `callback_on_step_end` that reports each denoising step."""

    def on_step_end(pipeline: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        progress("denoising", step + 1, total)
        return kwargs

    return on_step_end


def load_pipeline(entry: ModelEntry, allowed: dict[str, Any], device: str, dtype: str) -> Any:
    """`from_pretrained(path, local_files_only=True)` for one of the `allowed` pipeline classes."""
    import torch

    path = model_dir(entry)
    name = pipeline_class_name(path)
    if name not in allowed:
        raise invalid(f"{entry.id}: {name} is not supported here; supported: "
                      f"{', '.join(sorted(allowed))}", reason="PIPELINE_UNSUPPORTED")
    if dtype not in DTYPES:
        raise invalid(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}",
                      reason="DTYPE_INVALID")
    pipeline = allowed[name].from_pretrained(path, local_files_only=True, use_safetensors=True,
                                             torch_dtype=getattr(torch, dtype))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)
