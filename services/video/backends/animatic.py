"""animatic: camera moves with 2.5D parallax over previz layers, or over any flat keyframe.

Translation moves (truck) shift near layers more than far ones; dolly scales near layers more;
pan, tilt and zoom move every layer alike, as a real camera rotation or zoom does. The frame
count is exactly round(duration_s * fps).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from PIL import Image

from kantoku.services._core.registry import ModelRegistry
from kantoku.services.video.backend import (
    Layer,
    ProgressFn,
    RenderedVideo,
    VideoBackend,
    VideoJob,
)
from kantoku.services.video.encode import encode_mp4
from kantoku.v1 import common_pb2

MODEL_ID = "animatic-v1"
OVERSCAN = 1.3  # layers are enlarged so moves never reveal an edge
TRAVEL = 0.1  # share of the frame a full move travels (truck moves near layers 1.5x this)
#: Moves that transform every layer alike: the layers are flattened once, not per frame.
UNIFORM_MOVES = {"static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"}
#: Animatic clips are flat previz art that a job re-encodes when it assembles them: the fastest
#: x264 preset at a higher quality keeps them sharp for a fraction of the encoding time.
ENCODE_PRESET, ENCODE_CRF = "ultrafast", 17
MOVES = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "dolly_in", "dolly_out",
         "zoom_in", "zoom_out", "truck_left", "truck_right")


class AnimaticBackend(VideoBackend):
    needs_keyframe = True

    def __init__(self, registry: ModelRegistry) -> None:
        self.entry = registry.get(MODEL_ID, kind="video")

    def weights(self) -> list[common_pb2.WeightsFile]:
        return []

    def generate(self, job: VideoJob, progress: ProgressFn) -> RenderedVideo:
        size = (job.width_px, job.height_px)
        layers = _load_layers(job, size)
        parallax = len(layers) > 1 and job.camera_move not in UNIFORM_MOVES
        if len(layers) > 1 and not parallax:
            layers = [_flatten(layers)]
        total = job.frame_count
        mp4, count = encode_mp4(_frames(layers, job.camera_move, total, size), job.fps, *size,
                                on_frame=lambda n: progress("rendering", n, total),
                                crf=ENCODE_CRF, preset=ENCODE_PRESET)
        return RenderedVideo(mp4, count, job.fps, {"camera_move": job.camera_move,
                                                   "layers": [n for n, _, _ in layers],
                                                   "parallax": parallax})


def _load_layers(job: VideoJob, size: tuple[int, int]) -> list[tuple[str, Image.Image, float]]:
    sources = list(job.layers) or [Layer("keyframe", job.keyframe, 0.5)]  # type: ignore[arg-type]
    big = (round(size[0] * OVERSCAN), round(size[1] * OVERSCAN))
    loaded = []
    for layer in sorted(sources, key=lambda item: -item.depth):  # far first
        with Image.open(layer.path) as image:
            loaded.append((layer.name, _cover(image.convert("RGBA"), big), layer.depth))
    return loaded


def _flatten(layers: list[tuple[str, Image.Image, float]]) -> tuple[str, Image.Image, float]:
    """The layers composited back to front into one opaque picture."""
    flat = layers[0][1].copy()
    for _, image, _ in layers[1:]:
        flat.alpha_composite(image)
    return "+".join(name for name, _, _ in layers), flat, layers[0][2]


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover `size` keeping the aspect ratio, then centre-crop."""
    scale = max(size[0] / image.width, size[1] / image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = image.resize(target, Image.Resampling.BICUBIC)
    left, top = (resized.width - size[0]) // 2, (resized.height - size[1]) // 2
    return resized.crop((left, top, left + size[0], top + size[1]))


def _transform(move: str, t: float, depth: float) -> tuple[float, float, float]:
    """(scale, dx, dy) at progress t for a layer at `depth`; dx, dy as shares of the frame."""
    near = 1.0 - 0.8 * depth  # parallax weight: near layers move most
    ease = t * t * (3 - 2 * t)  # smoothstep, so moves start and end gently
    travel = TRAVEL * ease
    return {
        "pan_left": (1.0, travel, 0.0),
        "pan_right": (1.0, -travel, 0.0),
        "tilt_up": (1.0, 0.0, travel),
        "tilt_down": (1.0, 0.0, -travel),
        "truck_left": (1.0, travel * near * 1.5, 0.0),
        "truck_right": (1.0, -travel * near * 1.5, 0.0),
        "zoom_in": (1.0 + 0.25 * ease, 0.0, 0.0),
        "zoom_out": (1.25 - 0.25 * ease, 0.0, 0.0),
        "dolly_in": (1.0 + 0.3 * ease * near, 0.0, 0.0),
        "dolly_out": (1.0 + 0.3 * (1 - ease) * near, 0.0, 0.0),
    }.get(move, (1.0, 0.0, 0.0))


def _frames(layers: list[tuple[str, Image.Image, float]], move: str, total: int,
            size: tuple[int, int]) -> Iterator[np.ndarray]:
    backdrop, *overlays = layers
    backdrop = (backdrop[0], backdrop[1].convert("RGB"), backdrop[2])  # opaque: 3 channels
    # Only the opaque part of an overlay is moved and pasted: often a small share of the frame.
    boxes = [image.getchannel("A").getbbox() for _, image, _ in overlays]
    for index in range(total):
        t = index / max(1, total - 1)
        frame = _place(backdrop[1], *_transform(move, t, backdrop[2]), size)
        for (_, image, depth), box in zip(overlays, boxes, strict=True):
            if box is not None:
                placed = _place_box(image, box, *_transform(move, t, depth), size)
                if placed is not None:
                    frame.paste(placed[0], placed[1], mask=placed[0])
        yield np.asarray(frame)


def _view(image: Image.Image, scale: float, dx: float, dy: float,
          size: tuple[int, int]) -> tuple[float, float]:
    """Top-left corner, in layer pixels, of the frame-sized view of an overscanned layer."""
    width, height = size
    return (image.width / 2 - width / (2 * scale) - dx * width,
            image.height / 2 - height / (2 * scale) - dy * height)


def _place(image: Image.Image, scale: float, dx: float, dy: float,
           size: tuple[int, int]) -> Image.Image:
    """The frame-sized view of an overscanned layer, shifted by (dx, dy) and scaled around its
    centre; the margin (OVERSCAN - 1) / 2 covers the largest shift and scale >= 1 shows no edge."""
    width, height = size
    left, top = _view(image, scale, dx, dy, size)
    if scale == 1.0:  # pure translation: a crop at whole pixels, no resampling
        x, y = round(left), round(top)
        return image.crop((x, y, x + width, y + height))
    # A separable resize of the visible box is several times faster than a general affine warp.
    box = (left, top, left + width / scale, top + height / scale)
    return image.resize(size, Image.Resampling.BILINEAR, box=box)


def _place_box(image: Image.Image, bbox: tuple[int, int, int, int], scale: float, dx: float,
               dy: float, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]] | None:
    """Like `_place`, for the part of the layer inside `bbox` only: (picture, frame position).

    The output rectangle is snapped to whole frame pixels and its source box computed from it,
    so every output pixel samples the layer exactly where the full-frame view would.
    """
    width, height = size
    left, top = _view(image, scale, dx, dy, size)
    if scale == 1.0:
        left, top = round(left), round(top)
    x0 = max(0, math.floor((bbox[0] - left) * scale))
    y0 = max(0, math.floor((bbox[1] - top) * scale))
    x1 = min(width, math.ceil((bbox[2] - left) * scale))
    y1 = min(height, math.ceil((bbox[3] - top) * scale))
    if x1 <= x0 or y1 <= y0:
        return None
    if scale == 1.0:
        return image.crop((left + x0, top + y0, left + x1, top + y1)), (x0, y0)
    box = (left + x0 / scale, top + y0 / scale, left + x1 / scale, top + y1 / scale)
    return image.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box), (x0, y0)
