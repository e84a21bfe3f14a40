"""H.264 MP4 encoding (yuv420p, faststart) with PyAV, shared by every video backend."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from fractions import Fraction

import av
import numpy as np


def encode_mp4(frames: Iterable[np.ndarray], fps: float, width: int, height: int,
               on_frame: Callable[[int], None] | None = None, crf: int = 20,
               preset: str = "veryfast") -> tuple[bytes, int]:
    """Encode RGB uint8 frames (height, width, 3); returns the MP4 bytes and the frame count."""
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    count = 0
    try:
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
            stream = output.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            stream.thread_type = "FRAME"  # x264 frame threads use the cores better than slices
            for frame in frames:
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24")
                for packet in stream.encode(video_frame):
                    output.mux(packet)
                count += 1
                if on_frame:
                    on_frame(count)
            for packet in stream.encode():
                output.mux(packet)
        with open(path, "rb") as handle:
            return handle.read(), count
    finally:
        os.unlink(path)


def probe_mp4(data: bytes) -> dict[str, float | int | str]:
    """Frame count, fps, size, codec and pixel format of an MP4 (decoding every frame)."""
    fd, path = tempfile.mkstemp(suffix=".mp4")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            return {"frames": frames, "fps": float(stream.average_rate or 0),
                    "width": stream.width, "height": stream.height,
                    "codec": stream.codec_context.name, "pix_fmt": stream.pix_fmt or ""}
    finally:
        os.unlink(path)
