"""Loading a registered diffusers pipeline directory: safetensors only, hashed, offline."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kantoku.services._core.errors import internal, invalid, not_found
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


def loaded_files(path: Path) -> list[Path]:
    """Every file under `path` as `from_pretrained` sees it: symlinked folders are followed
    (a component folder is often a link into a shared cache), each real folder once."""
    files, seen = [], set()
    for folder, folders, names in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree
            folders.clear()
            continue
        seen.add(real)
        files += [Path(folder, name) for name in names]
    return sorted(p for p in files if p.is_file())


def weights_files(path: Path) -> dict[str, Path]:
    """Every weights file under `path`, through symlinks; refuses pickle checkpoints, which can
    run code on load."""
    everything = loaded_files(path)
    pickles = [str(p.relative_to(path)) for p in everything if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise invalid(f"{path}: pickle checkpoints are refused ({', '.join(pickles[:3])}); convert "
                      "them to .safetensors", reason="PICKLE_REFUSED")
    files = {str(p.relative_to(path)): p for p in everything if p.suffix == ".safetensors"}
    if not files:
        raise invalid(f"{path}: no .safetensors weights found", reason="WEIGHTS_MISSING")
    return files


def verified_weights(entry: ModelEntry, hasher: WeightsHasher,
                     folder: Path | None = None) -> list[common_pb2.WeightsFile]:
    """Hash every weights file that loading `folder` (default: the model's) would read.

    Raises:
        KantokuError: WEIGHTS_MISMATCH when a file's hash, or the set of files, differs from
            what the registry recorded at `kantoku models add`.
    """
    files = weights_files(folder or model_dir(entry))
    listed = {w.path for w in entry.weights}
    if listed and listed != set(files):
        added, gone = sorted(set(files) - listed), sorted(listed - set(files))
        raise internal(f"{entry.id}: its weights files are not the ones registered (new: "
                       f"{', '.join(added[:3]) or 'none'}; missing: {', '.join(gone[:3]) or 'none'}"
                       "); restore them or register the model again under a new id",
                       reason="WEIGHTS_MISMATCH", model_id=entry.id)
    return hasher.verify(entry, files)


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
