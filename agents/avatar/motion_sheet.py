"""A picture of a speech take: waveform, words, the viseme track and the gestures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from kantoku.services._core.audio import read_wav_mono
from kantoku.v1 import motion_pb2

WIDTH, ROW = 1400, 14
PALETTE = [(40, 40, 40), (230, 80, 80), (240, 140, 60), (230, 200, 60), (150, 210, 70),
           (70, 190, 120), (60, 190, 200), (70, 130, 230), (120, 90, 220), (190, 80, 210),
           (250, 250, 250), (220, 220, 160), (170, 220, 240), (240, 170, 200), (200, 170, 130)]


def render(wav: bytes, words: list[dict], response: motion_pb2.AnimateSpeechResponse,
           title: str, out: Path) -> Path:
    samples, rate = read_wav_mono(wav)
    duration = max(len(samples) / rate, 1e-3)
    names = list(response.visemes.viseme_names)
    height = 60 + 120 + 30 + ROW * len(names) + 60
    image = Image.new("RGB", (WIDTH, height), (18, 18, 24))
    draw = ImageDraw.Draw(image)
    left, right = 60, WIDTH - 20
    span = right - left

    def x(t: float) -> int:
        return int(left + span * t / duration)

    draw.text((left, 15), title, fill=(235, 235, 235))
    # waveform (min/max per pixel column)
    top, mid = 60, 120
    columns = np.array_split(samples, span) if len(samples) >= span else [samples]
    for i, column in enumerate(columns):
        if len(column):
            lo, hi = float(column.min()), float(column.max())
            draw.line([(left + i, mid - hi * 55), (left + i, mid - lo * 55)], fill=(110, 170, 255))
    for w in words:
        draw.line([(x(w["start_s"]), top), (x(w["start_s"]), top + 120)], fill=(70, 70, 90))
        label = w["word"] if w["word"].isascii() else ""
        draw.text((x(w["start_s"]) + 2, top + 104), label, fill=(200, 200, 200))
    # viseme weights, one row per viseme
    grid_top = top + 150
    for row, name in enumerate(names):
        draw.text((8, grid_top + row * ROW), name, fill=(180, 180, 180))
    fps = response.visemes.fps or 30.0
    for frame in response.visemes.frames:
        x0, x1 = x(frame.time_s), max(x(frame.time_s) + 1, x(frame.time_s + 1 / fps))
        for row, weight in enumerate(frame.weights):
            if weight > 0.02:
                shade = tuple(int(c * weight) for c in PALETTE[row])
                y = grid_top + row * ROW
                draw.rectangle([x0, y, x1, y + ROW - 2], fill=shade)
    # gestures
    gesture_top = grid_top + ROW * len(names) + 15
    for key in response.gestures.keyframes:
        colour = (255, 220, 90) if key.type == motion_pb2.GESTURE_TYPE_BLINK else (120, 240, 160)
        draw.rectangle([x(key.start_s), gesture_top, x(key.end_s), gesture_top + 12], fill=colour)
    draw.text((left, gesture_top + 20), "yellow: blink   green: head nod", fill=(180, 180, 180))
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out
