"""animatic: camera moves with 2.5D parallax over previz layers, or over any flat keyframe.

Translation moves (truck) shift near layers more than far ones; dolly scales near layers more;
pan, tilt and zoom move every layer alike, as a real camera rotation or zoom does. The frame
count is exactly round(duration_s * fps).
"""

from __future__ import annotations

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
        total = job.frame_count
        mp4, count = encode_mp4(_frames(layers, job.camera_move, total, size), job.fps, *size,
                                on_frame=lambda n: progress("rendering", n, total))
        return RenderedVideo(mp4, count, job.fps, {"camera_move": job.camera_move,
                                                   "layers": [n for n, _, _ in layers],
                                                   "parallax": len(layers) > 1})


def _load_layers(job: VideoJob, size: tuple[int, int]) -> list[tuple[str, Image.Image, float]]:
    sources = list(job.layers) or [Layer("keyframe", job.keyframe, 0.5)]  # type: ignore[arg-type]
    big = (round(size[0] * OVERSCAN), round(size[1] * OVERSCAN))
    loaded = []
    for layer in sorted(sources, key=lambda item: -item.depth):  # far first
        with Image.open(layer.path) as image:
            loaded.append((layer.name, _cover(image.convert("RGBA"), big), layer.depth))
    return loaded


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
    width, height = size
    for index in range(total):
        t = index / max(1, total - 1)
        frame: Image.Image | None = None
        for _, image, depth in layers:
            moved = _place(image, *_transform(move, t, depth), size)
            if frame is None:  # the farthest layer is the backdrop
                frame = moved.convert("RGB")
            else:
                frame.paste(moved, mask=moved)
        assert frame is not None
        yield np.asarray(frame)


def _place(image: Image.Image, scale: float, dx: float, dy: float,
           size: tuple[int, int]) -> Image.Image:
    """The frame-sized view of an overscanned layer, shifted by (dx, dy) and scaled around its
    centre; the margin (OVERSCAN - 1) / 2 covers the largest shift and scale >= 1 shows no edge."""
    width, height = size
    left = image.width / 2 - width / (2 * scale) - dx * width
    top = image.height / 2 - height / (2 * scale) - dy * height
    if scale == 1.0:  # pure translation: a crop at whole pixels, no resampling
        x, y = round(left), round(top)
        return image.crop((x, y, x + width, y + height))
    # A separable resize of the visible box is several times faster than a general affine warp.
    box = (left, top, left + width / scale, top + height / scale)
    return image.resize(size, Image.Resampling.BILINEAR, box=box)
