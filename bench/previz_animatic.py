"""Embedded-default picture speed at 720x1280: previz images/s and animatic frames/s.

Baselines from the same run: for previz, encoding an already-drawn frame to PNG (the floor any
renderer pays); for the animatic, H.264-encoding the same number of unchanging frames with the
animatic's encoder settings (so the
ratio shows what the camera move and layer compositing add on top of encoding).
Run: .venv/bin/python bench/previz_animatic.py [--images N] [--seconds S] [--repeat R]
(--repeat: time each animatic move and the encode floor R times and keep the fastest, for a
steadier number on a busy machine).
"""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kantoku.services._core.registry import ModelRegistry
from kantoku.services.image.backend import Character, ImageJob, Shot
from kantoku.services.image.backends.previz import PrevizBackend
from kantoku.services.video.backend import Layer, VideoJob
from kantoku.services.video.backends.animatic import ENCODE_CRF, ENCODE_PRESET, AnimaticBackend
from kantoku.services.video.encode import encode_mp4

WIDTH, HEIGHT, FPS = 720, 1280, 30
CAST = (Character("Aoi", "red jacket, silver hair"), Character("Ren", "blue hoodie"))
SHOTS = [("wide", "city rooftop", "night"), ("medium", "beach", "golden_hour"),
         ("close_up", "classroom", "day"), ("full", "concert stage", "dusk")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    registry = ModelRegistry()
    previz, animatic = PrevizBackend(registry), AnimaticBackend(registry)

    started = time.perf_counter()
    last = None
    for i in range(args.images):
        size, place, tod = SHOTS[i % len(SHOTS)]
        last = previz.generate(ImageJob(f"shot {i}", WIDTH, HEIGHT, i, Shot(size, "eye_level", CAST,
                                                                            place, tod)),
                               lambda *a: None)
    previz_s = (time.perf_counter() - started) / args.images
    assert last is not None
    frame = Image.open(io.BytesIO(last.png))
    started = time.perf_counter()
    for _ in range(args.images):
        frame.save(io.BytesIO(), format="PNG", compress_level=6)
    png_s = (time.perf_counter() - started) / args.images

    frames = round(args.seconds * FPS)
    with tempfile.TemporaryDirectory() as folder:
        layers = []
        for name, png, depth in last.layers:
            path = Path(folder) / f"{name}.png"
            path.write_bytes(png)
            layers.append(Layer(name, path, depth))
        keyframe = Path(folder) / "key.png"
        keyframe.write_bytes(last.png)
        animatic_s: dict[str, float] = {}
        for _ in range(args.repeat):
            for move in ("truck_left", "dolly_in", "zoom_in", "pan_right"):
                job = VideoJob(keyframe, WIDTH, HEIGHT, args.seconds, FPS, move, tuple(layers))
                started = time.perf_counter()
                animatic.generate(job, lambda *a: None)
                animatic_s[move] = min(animatic_s.get(move, math.inf),
                                       time.perf_counter() - started)
    still = np.asarray(frame.convert("RGB"))
    encode_s = math.inf
    for _ in range(args.repeat):
        started = time.perf_counter()
        encode_mp4((still for _ in range(frames)), FPS, WIDTH, HEIGHT, crf=ENCODE_CRF,
                   preset=ENCODE_PRESET)
        encode_s = min(encode_s, time.perf_counter() - started)

    print(f"previz   {1 / previz_s:7.1f} images/s   PNG-encode-only {1 / png_s:7.1f} images/s   "
          f"ratio {previz_s / png_s:5.2f}x the encode floor")
    for move, seconds in animatic_s.items():
        print(f"animatic {frames / seconds:7.1f} frames/s   H.264-encode-only "
              f"{frames / encode_s:7.1f} frames/s   ratio {seconds / encode_s:5.2f}x the encode "
              f"floor ({frames} frames, 3 layers, {move})")


if __name__ == "__main__":
    main()
