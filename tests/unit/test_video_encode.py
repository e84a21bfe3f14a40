"""Clip encoding: BT.709 tags on the stream, and pixels that decode to their colours as BT.709."""

from __future__ import annotations

import os
import tempfile

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc

from kantoku.services.video.encode import AVCOL_SPC_BT709, encode_mp4, probe_mp4

COLOURS = [(255, 0, 0), (0, 200, 0), (30, 60, 230), (250, 200, 40)]


def _decode_as_bt709(data: bytes) -> np.ndarray:
    """The first frame read the way a player reading the tags does: BT.709, limited range."""
    fd, path = tempfile.mkstemp(suffix=".mp4")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        with av.open(path) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24", src_colorspace="ITU709",
                                    src_color_range="MPEG")
    finally:
        os.unlink(path)


def test_clips_are_tagged_and_converted_bt709() -> None:
    image = np.zeros((64, 64 * len(COLOURS), 3), dtype=np.uint8)
    for index, colour in enumerate(COLOURS):
        image[:, 64 * index:64 * (index + 1)] = colour

    data, count = encode_mp4([image] * 3, 30, image.shape[1], image.shape[0])

    info = probe_mp4(data)
    assert count == info["frames"] == 3
    assert (info["color_primaries"], info["color_trc"], info["colorspace"],
            info["color_range"]) == (ColorPrimaries.BT709, ColorTrc.BT709, AVCOL_SPC_BT709,
                                     ColorRange.MPEG)
    decoded = _decode_as_bt709(data)
    for index, colour in enumerate(COLOURS):
        patch = decoded[16:48, 64 * index + 16:64 * index + 48].reshape(-1, 3).mean(axis=0)
        assert np.all(np.abs(patch - colour) < 4), (colour, patch)
