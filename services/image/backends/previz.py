"""previz: a storyboard renderer that draws the shot from its structured spec and the prompt.

Layers, back to front: sky (time of day, mood, sun or moon), set (follows the location), and
characters (a stable look per character name, framed by shot size and camera angle), plus a
caption strip on the composite. Same inputs and seed give byte-identical PNGs.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from kantoku.services._core import fonts
from kantoku.services._core.registry import ModelRegistry
from kantoku.services.image.backend import (
    Character,
    ImageBackend,
    ImageJob,
    ProgressFn,
    RenderedImage,
    Shot,
)
from kantoku.v1 import common_pb2

MODEL_ID = "previz-v1"
RGB = tuple[int, int, int]

SKIES: dict[str, tuple[RGB, RGB]] = {  # (top, horizon)
    "dawn": ((74, 88, 150), (246, 170, 150)),
    "day": ((70, 140, 220), (190, 225, 245)),
    "golden_hour": ((120, 110, 170), (255, 190, 100)),
    "dusk": ((40, 40, 95), (230, 110, 90)),
    "night": ((8, 10, 30), (35, 45, 85)),
}
# Figure height as a share of the frame, and which part of the body sits at the frame bottom
# (0 = feet, 1 = top of the head).
FRAMING: dict[str, tuple[float, float]] = {
    "extreme_wide": (0.14, 0.0),
    "wide": (0.32, 0.0),
    "full": (0.82, 0.0),
    "medium": (1.45, 0.45),
    "medium_close_up": (2.1, 0.62),
    "close_up": (3.4, 0.76),
    "extreme_close_up": (6.0, 0.84),
}
HORIZON = {"eye_level": 0.55, "high": 0.32, "low": 0.78, "birds_eye": 0.08, "dutch": 0.55}
COLOUR_WORDS: dict[str, RGB] = {
    "red": (200, 40, 50), "blue": (50, 90, 200), "green": (50, 150, 80), "yellow": (230, 200, 50),
    "black": (30, 30, 35), "white": (235, 235, 235), "silver": (190, 195, 205),
    "pink": (235, 130, 170), "purple": (130, 70, 170), "orange": (235, 130, 40),
    "brown": (120, 80, 50), "blonde": (235, 210, 130), "gold": (212, 175, 55),
}


class PrevizBackend(ImageBackend):
    size_multiple = 1

    def __init__(self, registry: ModelRegistry) -> None:
        self.entry = registry.get(MODEL_ID, kind="image")

    def weights(self) -> list[common_pb2.WeightsFile]:
        return []

    def generate(self, job: ImageJob, progress: ProgressFn) -> RenderedImage:
        size = (job.width_px, job.height_px)
        shot = job.shot
        text = f"{job.prompt} {shot.location} {shot.mood}".lower()
        rng = np.random.default_rng(_digest_int(job.prompt, shot.location, shot.time_of_day,
                                                shot.shot_size, shot.camera_angle, job.seed))
        horizon = int(size[1] * HORIZON.get(shot.camera_angle, 0.55))
        progress("sky", 1, 4)
        sky = _sky(size, shot, text, horizon, rng)
        progress("set", 2, 4)
        set_layer = _set(size, _location(shot.location or text), text, horizon, shot, rng)
        progress("characters", 3, 4)
        people = _characters(size, shot, horizon)
        progress("compositing", 4, 4)
        composite = Image.alpha_composite(Image.alpha_composite(sky, set_layer), people)
        if shot.camera_angle == "dutch":
            composite = _dutch(composite)
        _caption(composite, shot.caption or job.prompt)
        layers = [("sky", _png(sky), 1.0), ("set", _png(set_layer), 0.6),
                  ("characters", _png(people), 0.2)]
        return RenderedImage(_png(composite.convert("RGB")), layers,
                             {"renderer": MODEL_ID, "location": _location(shot.location or text)})


def _digest_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t),
            int(a[2] + (b[2] - a[2]) * t))


def _mood(colour: RGB, mood: str) -> RGB:
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255 for c in colour))
    if any(w in mood for w in ("melanchol", "sad", "lonely", "calm")):
        s, h = s * 0.55, (h + 0.03) % 1
    elif any(w in mood for w in ("tense", "angry", "danger", "dark")):
        lightness, h = lightness * 0.75, (h - 0.04) % 1
    elif any(w in mood for w in ("joy", "happy", "bright", "hope", "energetic")):
        s, lightness = min(1.0, s * 1.25), min(0.95, lightness * 1.08)
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return (int(r * 255), int(g * 255), int(b * 255))


def _sky(size: tuple[int, int], shot: Shot, text: str, horizon: int,
         rng: np.random.Generator) -> Image.Image:
    width, height = size
    top, bottom = SKIES.get(shot.time_of_day, SKIES["day"])
    top, bottom = _mood(top, shot.mood), _mood(bottom, shot.mood)
    t = np.clip(np.arange(height) / max(1, horizon), 0, 1)[:, None]
    column = (np.array(top) * (1 - t) + np.array(bottom) * t).astype(np.uint8)
    pixels = np.repeat(column[:, None, :], width, axis=1)
    image = Image.fromarray(pixels, "RGB").convert("RGBA")
    draw = ImageDraw.Draw(image)
    unit = min(width, height)
    if shot.time_of_day == "night":
        for _ in range(int(width * height / 4000)):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, max(1, horizon)))
            draw.point((x, y), fill=(255, 255, 240, int(rng.integers(120, 255))))
        _disc(draw, (int(width * 0.78), int(horizon * 0.25)), unit * 0.05, (240, 240, 220))
    else:
        height_share = {"dawn": 0.85, "golden_hour": 0.7, "dusk": 0.95}.get(shot.time_of_day, 0.2)
        centre = (int(width * 0.25), int(horizon * height_share))
        _disc(draw, centre, unit * 0.07, _mix(bottom, (255, 250, 220), 0.7))
    if re.search(r"\brain(y|ing|s)?\b", text):
        for _ in range(width // 3):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            draw.line([(x, y), (x - unit * 0.01, y + unit * 0.05)], fill=(200, 210, 230, 110))
    if re.search(r"\bsnow(y|ing|s)?\b", text):
        for _ in range(width // 2):
            _disc(draw, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                  unit * 0.004, (250, 250, 255))
    return image


def _disc(draw: ImageDraw.ImageDraw, centre: tuple[int, int], radius: float, colour: RGB) -> None:
    x, y = centre
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(*colour, 255))


def _location(text: str) -> str:
    words = {
        "city": ("city", "street", "rooftop", "downtown", "alley", "neon", "tokyo", "building"),
        "beach": ("beach", "sea", "ocean", "shore", "coast", "wave"),
        "forest": ("forest", "park", "tree", "woods", "garden", "mountain"),
        "stage": ("stage", "concert", "live", "club", "spotlight", "studio"),
        "room": ("room", "bedroom", "cafe", "classroom", "kitchen", "office", "interior", "home"),
    }
    lowered = text.lower()
    for place, keys in words.items():
        if any(k in lowered for k in keys):
            return place
    return "field"


def _set(size: tuple[int, int], place: str, text: str, horizon: int, shot: Shot,
         rng: np.random.Generator) -> Image.Image:
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    night = shot.time_of_day in ("night", "dusk")
    ground = _mood({"beach": (220, 200, 150), "forest": (60, 110, 60), "stage": (60, 40, 40),
                    "room": (150, 110, 80), "city": (70, 70, 80)}.get(place, (90, 140, 70)),
                   shot.mood)
    if night:
        ground = _mix(ground, (10, 10, 25), 0.55)
    draw.rectangle([0, horizon, width, height], fill=(*ground, 255))
    if place == "city":
        x = -int(rng.integers(0, width // 8 + 1))
        while x < width:
            w = int(rng.integers(width // 10, width // 4))
            h = int(rng.integers(height // 10, max(height // 10 + 1, int(horizon * 0.8))))
            shade = _mix((50, 55, 70), (15, 15, 30), 0.6 if night else 0.0)
            draw.rectangle([x, horizon - h, x + w, horizon], fill=(*shade, 255))
            lit = (255, 220, 120) if night else (150, 170, 190)
            for wy in range(horizon - h + 8, horizon - 8, max(10, height // 60)):
                for wx in range(x + 6, x + w - 6, max(10, width // 40)):
                    if rng.random() < (0.45 if night else 0.8):
                        draw.rectangle([wx, wy, wx + 4, wy + 5], fill=(*lit, 255))
            x += w + int(rng.integers(2, 12))
        if "neon" in text:
            for _ in range(4):
                nx, ny = int(rng.integers(0, width)), int(rng.integers(horizon // 3, horizon))
                draw.rectangle([nx, ny, nx + width // 12, ny + height // 80],
                               fill=(255, 60, 200, 255))
    elif place == "beach":
        sea = _mix((30, 90, 160), (10, 20, 50), 0.6 if night else 0.0)
        draw.rectangle([0, horizon, width, horizon + (height - horizon) // 2], fill=(*sea, 255))
        for _ in range(12):
            y = int(rng.integers(horizon + 4, horizon + max(5, (height - horizon) // 2)))
            x = int(rng.integers(0, width))
            draw.line([(x, y), (x + width // 10, y)], fill=(220, 235, 250, 200), width=2)
    elif place == "forest":
        for _ in range(int(rng.integers(6, 14))):
            x = int(rng.integers(0, width))
            h = int(rng.integers(height // 8, height // 3))
            trunk = (70, 50, 35)
            draw.rectangle([x - 4, horizon - h // 3, x + 4, horizon + 6], fill=(*trunk, 255))
            leaf = _mood((40, 120 - int(rng.integers(0, 40)), 50), shot.mood)
            draw.polygon([(x, horizon - h), (x - h // 4, horizon - h // 4),
                          (x + h // 4, horizon - h // 4)], fill=(*leaf, 255))
    elif place == "stage":
        for i in range(3):
            cx = width * (i + 1) // 4
            draw.polygon([(cx - width // 30, 0), (cx + width // 30, 0),
                          (cx + width // 6, horizon), (cx - width // 6, horizon)],
                         fill=(255, 245, 200, 60))
        draw.rectangle([0, horizon - height // 60, width, horizon], fill=(30, 20, 20, 255))
    elif place == "room":
        wall = _mood((200, 185, 160), shot.mood)
        if night:
            wall = _mix(wall, (20, 20, 40), 0.5)
        draw.rectangle([0, 0, width, horizon], fill=(*wall, 255))
        wx, wy = int(width * 0.58), int(horizon * 0.2)
        draw.rectangle([wx, wy, wx + width // 3, wy + horizon // 2], fill=(0, 0, 0, 0),
                       outline=(90, 70, 50, 255), width=max(3, width // 150))
    else:
        points = [(0, horizon)]
        for i in range(9):
            points.append((width * i // 8, horizon - int(rng.integers(0, height // 14 + 1))))
        points += [(width, horizon), (width, horizon + 2), (0, horizon + 2)]
        draw.polygon(points, fill=(*_mix(ground, (255, 255, 255), 0.1), 255))
    return layer


@dataclass(frozen=True)
class Look:
    outfit: RGB
    hair: RGB
    skin: RGB
    build: float
    height: float


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return (int(r * 255), int(g * 255), int(b * 255))


GARMENTS = r"(jacket|dress|shirt|t-shirt|coat|raincoat|hoodie|suit|sweater|uniform|kimono)"


def _look(character: Character) -> Look:
    """Colours and proportions from the name (so every shot agrees) and the description."""
    rng = np.random.default_rng(_digest_int("character", character.name.strip().lower()))
    outfit = _hls(float(rng.random()), 0.45, 0.55)
    hair = _hls(float(rng.random()), 0.25, 0.4)
    description = character.description.lower()
    for word, colour in COLOUR_WORDS.items():
        if f"{word} hair" in description:
            hair = colour
    # The outfit takes the colour named first before a garment ("yellow raincoat, white
    # sneakers" is yellow).
    garments = [(m.start(), m.group(1)) for m in re.finditer(
        rf"\b({'|'.join(COLOUR_WORDS)})\s+(?:\w+\s+)?{GARMENTS}\b", description)]
    if garments:
        outfit = COLOUR_WORDS[min(garments)[1]]
    return Look(outfit, hair, (236, 200, 170), float(rng.uniform(0.85, 1.15)),
                float(rng.uniform(0.92, 1.05)))


def _characters(size: tuple[int, int], shot: Shot, horizon: int) -> Image.Image:
    width, height = size
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    cast = list(shot.characters)
    if not cast:
        return layer
    scale, cut = FRAMING.get(shot.shot_size, FRAMING["medium"])
    if shot.shot_size in ("close_up", "extreme_close_up", "medium_close_up"):
        cast = cast[:1]  # one face fills a close shot
    draw = ImageDraw.Draw(layer)
    for index, character in enumerate(cast):
        look = _look(character)
        # Portrait frames are narrow: size figures so two of them still fit side by side.
        base = min(height, width * 1.6 / len(cast))
        figure_h = base * scale * look.height
        centre_x = width * (index + 1) / (len(cast) + 1)
        if cut == 0.0:  # whole figure standing on the ground, head inside the frame
            feet = horizon + (height - horizon) * (0.5 if scale < 0.5 else 0.85)
            feet = min(max(feet, figure_h + 0.04 * height), 0.97 * height)
        else:  # the frame's bottom edge cuts the body at `cut`
            feet = height + figure_h * cut
        _figure(draw, centre_x, feet, figure_h, look)
    return layer


def _figure(draw: ImageDraw.ImageDraw, x: float, feet: float, h: float, look: Look) -> None:
    build, outfit, hair, skin = look.build, look.outfit, look.hair, look.skin
    head_r = h * 0.075
    head_y = feet - h + head_r
    shoulder = h * 0.13 * build
    body_top, body_bottom = head_y + head_r * 1.2, feet - h * 0.45
    leg = h * 0.045 * build
    draw.rectangle([x - shoulder * 0.55, body_bottom - 2, x - shoulder * 0.55 + leg * 2, feet],
                   fill=(*_mix(outfit, (20, 20, 30), 0.5), 255))
    draw.rectangle([x + shoulder * 0.55 - leg * 2, body_bottom - 2, x + shoulder * 0.55, feet],
                   fill=(*_mix(outfit, (20, 20, 30), 0.5), 255))
    draw.rounded_rectangle([x - shoulder, body_top, x + shoulder, body_bottom],
                           radius=int(shoulder * 0.4), fill=(*outfit, 255))
    draw.ellipse([x - head_r, head_y - head_r, x + head_r, head_y + head_r],
                 fill=(*skin, 255))
    draw.chord([x - head_r * 1.08, head_y - head_r * 1.12, x + head_r * 1.08,
                head_y + head_r * 0.7], 180, 360, fill=(*hair, 255))
    eye = max(1.0, head_r * 0.12)
    for side in (-1, 1):
        ex, ey = x + side * head_r * 0.38, head_y + head_r * 0.15
        draw.ellipse([ex - eye, ey - eye, ex + eye, ey + eye], fill=(30, 30, 40, 255))


def _dutch(image: Image.Image) -> Image.Image:
    rotated = image.rotate(8, resample=Image.Resampling.BICUBIC, expand=False)
    background = Image.new("RGBA", image.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rotated)


def _caption(image: Image.Image, text: str) -> None:
    width, height = image.size
    strip = max(18, height // 18)
    font = fonts.font(max(10, int(strip * 0.5)))  # Noto Sans JP: Japanese too, not boxes
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle([0, height - strip, width, height], fill=(0, 0, 0, 170))
    line = text if len(text) <= 90 else text[:87] + "..."
    draw.text((strip * 0.4, height - strip * 0.78), line, font=font, fill=(240, 240, 240, 255))
    image.alpha_composite(overlay)
