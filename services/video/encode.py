"""H.264 MP4 encoding (yuv420p, faststart, BT.709) with PyAV, shared by every video backend.

Colour: kantoku's pictures are sRGB, whose primaries are BT.709's, so every stream it writes is
BT.709 at every size: RGB frames are converted to limited-range ("tv") yuv420p with the BT.709
matrix, and the stream is tagged BT.709 primaries, transfer and matrix with limited range (in
the H.264 VUI and the MP4's `colr` box), so players decode the colours that were encoded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc, Interpolation
from av.video.stream import VideoStream

#: FFmpeg's value for BT.709 in AVColorSpace (the matrix), like the primaries and transfer.
AVCOL_SPC_BT709 = 1
_ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND


def tag_bt709(stream: VideoStream) -> None:
    """Tags an output video stream BT.709 (primaries, transfer, matrix), limited range."""
    stream.color_primaries = ColorPrimaries.BT709
    stream.color_trc = ColorTrc.BT709
    stream.colorspace = AVCOL_SPC_BT709
    stream.color_range = ColorRange.MPEG


def bt709_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame as limited-range BT.709 yuv420p, converted only when it is not that already.

    RGB frames are converted with the BT.709 matrix; YUV frames are read with the matrix and
    range they are tagged with (untagged ones as BT.601, FFmpeg's default) and converted. The
    conversion rounds accurately (swscale's fast path from YUV is off by up to 2 levels).
    """
    if (frame.format.name, frame.colorspace, frame.color_range) != (
            "yuv420p", AVCOL_SPC_BT709, ColorRange.MPEG):
        frame = frame.reformat(format="yuv420p", dst_colorspace=Colorspace.ITU709,
                               dst_color_range=ColorRange.MPEG, interpolation=_ACCURATE)
    return tagged_bt709(frame)


def tagged_bt709(frame: av.VideoFrame) -> av.VideoFrame:
    """`frame` itself, tagged limited-range BT.709 (for pixels that already are)."""
    frame.color_primaries, frame.color_trc = ColorPrimaries.BT709, ColorTrc.BT709
    frame.colorspace, frame.color_range = AVCOL_SPC_BT709, ColorRange.MPEG
    return frame


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
            tag_bt709(stream)
            stream.options = {"crf": str(crf), "preset": preset}
            stream.thread_type = "FRAME"  # x264 frame threads use the cores better than slices
            for frame in frames:
                video_frame = bt709_yuv420p(
                    av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), "rgb24"))
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
    """Frame count, fps, size, codec, pixel format and colour tags of an MP4 (decoding every frame).

    The colour tags are FFmpeg's values (`color_primaries`, `color_trc`, `colorspace`: 1 is
    BT.709; `color_range`: 1 is limited), as ffprobe shows them by name.
    """
    fd, path = tempfile.mkstemp(suffix=".mp4")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            return {"frames": frames, "fps": float(stream.average_rate or 0),
                    "width": stream.width, "height": stream.height,
                    "codec": stream.codec_context.name, "pix_fmt": stream.pix_fmt or "",
                    "color_primaries": stream.color_primaries, "color_trc": stream.color_trc,
                    "colorspace": stream.colorspace, "color_range": stream.color_range}
    finally:
        os.unlink(path)
