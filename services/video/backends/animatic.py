"""animatic: camera moves with 2.5D parallax over previz layers, or over any flat keyframe.

Translation moves (truck) shift near layers more than far ones; dolly scales near layers more;
pan, tilt and zoom move every layer alike, as a real camera rotation or zoom does. The frame
count is exactly round(duration_s * fps).

Frames are drawn with OpenCV on 4-channel numpy pixels (bilinear warps, premultiplied "over"
compositing of each overlay's opaque box; backdrop rows hidden edge to edge by an opaque overlay
are not drawn), on a worker thread a few frames ahead of the encoder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from kantoku.services._core.registry import ModelRegistry
from kantoku.services._core.streaming import prefetch
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
        frames = prefetch(_frames(layers, job.camera_move, total, size))
        try:
            mp4, count = encode_mp4(frames, job.fps, *size,
                                    on_frame=lambda n: progress("rendering", n, total),
                                    crf=ENCODE_CRF, preset=ENCODE_PRESET)
        finally:
            frames.close()  # stops the drawing thread if encoding failed
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


class _Sprite(NamedTuple):
    """An overlay layer, prepared once for all frames."""

    pixels: np.ndarray  # premultiplied RGBA
    clear: np.ndarray  # 255 - alpha: how much of what lies under each pixel shows through
    solid: np.ndarray  # per row, the running count of fully opaque pixels (a column prefix sum)
    box: tuple[int, int, int, int]  # bounding box of the visible part
    depth: float


def _frames(layers: list[tuple[str, Image.Image, float]], move: str, total: int,
            size: tuple[int, int]) -> Iterator[np.ndarray]:
    width, height = size
    backdrop, *overlays = layers
    # Layers are kept as 4-channel pixels: OpenCV warps 4 channels faster than 3. The backdrop
    # is opaque, its alpha ignored (dropped in the end); overlays are premultiplied, so that
    # resampling does not bleed the colour of transparent pixels and compositing is one
    # multiply-add. Only the visible part (alpha > 0) of an overlay is moved and composited.
    back = np.asarray(backdrop[1].convert("RGBA"))
    sprites = []
    for _, image, depth in overlays:
        box = image.getchannel("A").getbbox()
        if box is not None:
            alpha = np.asarray(image.getchannel("A"))
            solid = np.zeros((alpha.shape[0], alpha.shape[1] + 1), np.int32)
            np.cumsum(alpha == 255, axis=1, out=solid[:, 1:])
            sprites.append(_Sprite(np.asarray(image.convert("RGBa")), 255 - alpha, solid, box,
                                   depth))
    for index in range(total):
        t = index / max(1, total - 1)
        placed = [(sprite, _transform(move, t, sprite.depth)) for sprite in sprites]
        # Frame rows an overlay covers opaquely from edge to edge: what lies under them is hidden.
        covered = [_hidden_rows(sprite, *transform, size) for sprite, transform in placed]
        hidden = np.zeros(height, bool)
        for rows in covered:
            hidden |= rows
        scale, dx, dy = _transform(move, t, backdrop[2])
        left, top = _view(back, scale, dx, dy, size)
        x, y = round(left), round(top)
        if scale == 1.0 and not placed:  # a crop, copied by the conversion to RGB below
            frame = back[y:y + height, x:x + width]
        else:
            frame = np.empty((height, width, 4), np.uint8)
            for y0, y1 in _runs(~hidden):
                if scale == 1.0:  # pure translation: a crop at whole pixels, no resampling
                    frame[y0:y1] = back[y + y0:y + y1, x:x + width]
                else:
                    _warp(back, scale, left, top + y0 / scale, frame[y0:y1])
        for (sprite, transform), opaque in zip(placed, covered, strict=True):
            _composite(frame, sprite, *transform, size, opaque)
        yield cv2.cvtColor(frame, cv2.COLOR_RGBA2RGB)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True in a boolean vector."""
    edges = np.flatnonzero(np.diff(rows, prepend=False, append=False)).tolist()
    return list(zip(edges[::2], edges[1::2], strict=True))


def _hidden_rows(sprite: _Sprite, scale: float, dx: float, dy: float,
                 size: tuple[int, int]) -> np.ndarray:
    """Frame rows that the placed sprite covers fully opaquely across the whole frame width.

    A frame pixel blends at most the 2 x 2 layer pixels around where it samples; a margin of one
    more pixel on every side keeps the test safe from rounding in the warp's fixed point."""
    width, height = size
    rows, columns = sprite.clear.shape
    left, top = _view(sprite.pixels, scale, dx, dy, size)
    if scale == 1.0:
        left, top = round(left), round(top)
    # Layer columns and rows [start, end) that frame pixels may blend; past the layer's border
    # the warp repeats its edge pixels, so the ranges are clamped to at least the edge.
    c0 = min(max(0, math.floor(left + 0.5 / scale - 0.5) - 1), columns - 1)
    c1 = max(min(columns, math.floor(left + (width - 0.5) / scale - 0.5) + 3), c0 + 1)
    full = (sprite.solid[:, c1] - sprite.solid[:, c0]) == c1 - c0  # per layer row
    counts = np.concatenate(([0], np.cumsum(full)))
    y = np.floor(top + (np.arange(height) + 0.5) / scale - 0.5).astype(np.int64)
    r0, r1 = np.clip(y - 1, 0, rows - 1), np.clip(y + 3, 1, rows)
    return (counts[r1] - counts[r0]) == r1 - r0


def _composite(frame: np.ndarray, sprite: _Sprite, scale: float, dx: float, dy: float,
               size: tuple[int, int], opaque: np.ndarray) -> None:
    """Place the opaque part of a sprite over the frame, in place (premultiplied "over"); rows
    in `opaque` are copied, not blended."""
    width, height = size
    left, top = _view(sprite.pixels, scale, dx, dy, size)
    if scale == 1.0:
        left, top = round(left), round(top)
    # The output rectangle is snapped to whole frame pixels and its source box computed from it,
    # so every output pixel samples the layer exactly where the full-frame view would.
    x0 = max(0, math.floor((sprite.box[0] - left) * scale))
    y0 = max(0, math.floor((sprite.box[1] - top) * scale))
    x1 = min(width, math.ceil((sprite.box[2] - left) * scale))
    y1 = min(height, math.ceil((sprite.box[3] - top) * scale))
    if x1 <= x0 or y1 <= y0:
        return
    under = frame[y0:y1, x0:x1]
    if scale == 1.0:
        x, y = int(left), int(top)
        over = sprite.pixels[y + y0:y + y1, x + x0:x + x1]
        clear = sprite.clear[y + y0:y + y1, x + x0:x + x1]
    else:
        over = _warp(sprite.pixels, scale, left + x0 / scale, top + y0 / scale,
                     np.empty((y1 - y0, x1 - x0, 4), np.uint8))
        clear = cv2.bitwise_not(cv2.extractChannel(over, 3))
    for a, b in _runs(opaque[y0:y1]):
        under[a:b] = over[a:b]
    for a, b in _runs(~opaque[y0:y1]):
        part = under[a:b]
        cv2.multiply(part, cv2.cvtColor(clear[a:b], cv2.COLOR_GRAY2RGBA), dst=part, scale=1 / 255)
        cv2.add(part, over[a:b], dst=part)


def _view(pixels: np.ndarray, scale: float, dx: float, dy: float,
          size: tuple[int, int]) -> tuple[float, float]:
    """Top-left corner, in layer pixels, of the frame-sized view of an overscanned layer."""
    width, height = size
    return (pixels.shape[1] / 2 - width / (2 * scale) - dx * width,
            pixels.shape[0] / 2 - height / (2 * scale) - dy * height)


def _warp(pixels: np.ndarray, scale: float, left: float, top: float,
          out: np.ndarray) -> np.ndarray:
    """Fill `out` with a bilinear view of `pixels` and return it: output pixel (x, y) covers layer
    pixels (left + x / scale, top + y / scale) to (left + (x + 1) / scale, top + (y + 1) / scale),
    as PIL's resize with a box does (scale >= 1); edge pixels repeat past the layer's border.
    The view and the frame are related by the layer's overscan margin (OVERSCAN - 1) / 2, which
    covers the largest shift, and scale >= 1 shows no edge."""
    step = 1 / scale
    matrix = np.array([[step, 0.0, left + step / 2 - 0.5], [0.0, step, top + step / 2 - 0.5]])
    cv2.warpAffine(pixels, matrix, (out.shape[1], out.shape[0]), dst=out,
                   flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out
