"""FLUX-sized diffusion transformer with random weights: images/s at batch 1 vs batched.

Times the denoising transformer (where nearly all of a FLUX image's GPU time goes) for one
28-step image at --size (1024: 4096 image tokens; 512 text tokens), at batch 1 and at each of
--batches, in the same run; prints images/s and the speed-up over batch 1. Needs a CUDA GPU
(about 30 GB in bf16); `--tiny` runs a two-layer model on any device to check the script itself.
Run: .venv/bin/python bench/flux_batching.py [--batches 2 4 8] [--steps 28] [--tiny]
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import FluxTransformer2DModel

FLUX_DEV = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
TINY = {
    **FLUX_DEV,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "axes_dims_rope": (4, 6, 6),
}


def step_inputs(
    batch: int, config: dict, image_tokens: int, text_tokens: int, device: str, dtype: torch.dtype
) -> dict:
    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=dtype)

    side = int(image_tokens**0.5)
    grid = (torch.zeros(1), torch.arange(side).float(), torch.arange(side).float())
    ids = torch.stack(torch.meshgrid(*grid, indexing="ij"), dim=-1).reshape(-1, 3).to(device)
    return {
        "hidden_states": rand(batch, image_tokens, config["in_channels"]),
        "encoder_hidden_states": rand(batch, text_tokens, config["joint_attention_dim"]),
        "pooled_projections": rand(batch, config["pooled_projection_dim"]),
        "timestep": torch.full((batch,), 0.5, device=device, dtype=dtype),
        "guidance": torch.full((batch,), 3.5, device=device, dtype=dtype),
        "img_ids": ids,
        "txt_ids": torch.zeros(text_tokens, 3, device=device),
    }


@torch.inference_mode()
def images_per_second(
    model: FluxTransformer2DModel, inputs: dict, batch: int, steps: int, device: str
) -> float:
    for _ in range(2):
        model(**inputs)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        model(**inputs)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--size", type=int, default=1024, help="square image side in pixels")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        raise SystemExit("no CUDA GPU here; run with --tiny to check the script")
    config = TINY if args.tiny else FLUX_DEV
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    # FLUX packs 2x2 latent patches of an 8x-downsampled latent: one token per 16x16 pixels.
    image_tokens, text_tokens = (256, 32) if args.tiny else ((args.size // 16) ** 2, 512)
    # Build the random weights on the device in the target dtype: a 12 B model in fp32 on the
    # host would need 48 GB and minutes of initialisation.
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = FluxTransformer2DModel(**config).eval()
    torch.set_default_dtype(torch.float32)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(
        f"{params:.2f} B parameters on {device} ({dtype}), {args.steps} steps, "
        f"{image_tokens} image + {text_tokens} text tokens"
    )

    def rate(batch: int) -> float:
        inputs = step_inputs(batch, config, image_tokens, text_tokens, device, dtype)
        return images_per_second(model, inputs, batch, args.steps, device)

    single = rate(1)
    print(f"batch 1: {single:.3f} images/s (baseline)")
    for batch in args.batches:
        batched = rate(batch)
        print(f"batch {batch}: {batched:.3f} images/s   speed-up {batched / single:.2f}x")

if __name__ == "__main__":
    main()
