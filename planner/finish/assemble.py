"""Assemble the finished video: shot clips concatenated frame-accurately, with the soundtrack.

Video: every clip is decoded with PyAV and exactly `ClipInput.frames` frames are taken from it
(the last frame is held when a clip is short, extra frames are dropped when it is long), scaled
and letterboxed when its size differs, and encoded as one H.264 stream (libx264, yuv420p,
preset `veryfast`, CRF 20, `+faststart`, the settings of `kantoku.services.video.encode`) with
pts = frame index at exactly `fps`. Every shot starts on a keyframe, so an editor can seek to it.
Colour is BT.709 throughout, limited range, and tagged so: clips already in it pass through
unconverted, others (untagged clips read as BT.601, FFmpeg's default) and frames drawn in RGB
are converted with the BT.709 matrix.

Audio: one AAC track (48 kHz stereo) exactly as long as the video: the song and the dialogue
mixed and, by default, normalised to -14 LUFS with true peaks at most -1 dBTP (see
`soundtrack`). The track is encoded and measured before the video, then copied into the MP4.

Lyrics, optionally: a `mov_text` subtitle track (see `subtitle_track`), for players to show with
captions on, instead of lyrics burned into the picture by a frame hook.

Every change the assembler makes to its inputs is written to `AssemblyReport.notes`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.frame import PictureType

from kantoku.planner.finish.loudness import PLATFORM_TARGET, LoudnessTarget
from kantoku.planner.finish.soundtrack import (
    DialogueInput,
    LoudnessReport,
    mix_audio,
    samples_for,
    write_soundtrack,
)
from kantoku.planner.finish.subtitle_track import SubtitleMuxer, SubtitleTrack
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import KantokuError, internal, invalid
from kantoku.services._core.files import partial_file, require_file
from kantoku.services._core.streaming import prefetch
from kantoku.services.video.encode import bt709_yuv420p, tag_bt709, tagged_bt709

__all__ = ["AssemblyReport", "ClipInput", "DialogueInput", "assemble_video"]

#: x264 speed/size trade-off; the same as the per-shot clips (`services/video/encode.py`).
PRESET = "veryfast"
CRF = 20
PROGRESS_EVERY = 30

#: `hook(frame_index, rgb) -> rgb`. A hook that also has `burn_yuv(frame_index, planes) -> bool`
#: (see `subtitles.SubtitleBurner`) draws straight into yuv420p frames instead.
FrameHook = Callable[[int, np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ClipInput:
    """One rendered shot: its clip file and how many frames it must last."""

    path: Path
    frames: int
    shot_id: str


@dataclass
class AssemblyReport:
    """What was written, and every change made to the inputs on the way."""

    path: Path
    frames: int
    duration_s: float
    sha256: str
    notes: list[str] = field(default_factory=list)
    #: The soundtrack's loudness before and after normalising; None when it kept its level.
    loudness: LoudnessReport | None = None


@dataclass(frozen=True)
class _Canvas:
    width: int
    height: int
    fps: int


def assemble_video(clips: Sequence[ClipInput], *, fps: int, width_px: int, height_px: int,
                   out: Path, song: Path | None = None, dialogue: Sequence[DialogueInput] = (),
                   frame_hook: FrameHook | None = None,
                   loudness: LoudnessTarget | None = PLATFORM_TARGET,
                   subtitles: SubtitleTrack | None = None,
                   on_progress: Progress | None = None) -> AssemblyReport:
    """Concatenate `clips` into one MP4 at `out` with the song and dialogue mixed under it.

    Args:
        clips: the shots in order; each contributes exactly `frames` frames.
        fps: output frame rate (frames per second, an integer like the plan's).
        width_px: output width; clips of another size are scaled and letterboxed.
        height_px: output height.
        out: the MP4 to write; written under a temporary name and renamed when complete, so a
            failure never leaves a half-written file.
        song: an audio file (WAV, FLAC, MP3, OGG, ...) to play under the whole video; only read.
        dialogue: spoken lines to mix over the song (or over silence).
        frame_hook: called as `frame_hook(global_frame_index, rgb)` for every frame; returns the
            RGB frame to encode (same shape), e.g. with subtitles burnt in.
        loudness: what the soundtrack is normalised to (default -14 LUFS, -1 dBTP); None keeps
            the mix's own level.
        subtitles: lyric lines to mux as a mov_text subtitle track.
        on_progress: called as `on_progress(done_frames, total_frames)` every 30 frames and at
            the end.

    Returns:
        The report: path, frame count, duration, sha256 of the file, notes and loudness.

    Raises:
        KantokuError: INVALID_REQUEST when a clip, the song or a dialogue line is missing or
            cannot be decoded, or the arguments are unusable.
    """
    canvas = _Canvas(width_px, height_px, fps)
    _check_arguments(clips, canvas)
    for clip in clips:
        require_file(clip.path, f"the clip of shot {clip.shot_id}",
                     "render the shot again or fix its path")
    total = sum(clip.frames for clip in clips)
    notes: list[str] = []
    mix = mix_audio(samples_for(total, fps), song, dialogue, notes)
    out = Path(out)
    try:
        with partial_file(out) as partial, partial_file(out.with_suffix(".m4a")) as sound:
            measured = write_soundtrack(mix, sound, loudness, notes)
            del mix
            _encode(partial, clips, canvas, _Extras(sound, subtitles, frame_hook), notes,
                    on_progress)
            os.replace(partial, out)
    except av.FFmpegError as exc:
        raise internal(f"could not write {out.name} ({exc}); check free disk space and that "
                       "the folder is writable", reason="ASSEMBLY_FAILED") from None
    return AssemblyReport(out, total, total / fps, sha256_file(out), notes, measured)


@dataclass(frozen=True)
class _Extras:
    """What goes into the MP4 besides the clips' frames."""

    soundtrack: Path
    subtitles: SubtitleTrack | None
    frame_hook: FrameHook | None


def _encode(path: Path, clips: Sequence[ClipInput], canvas: _Canvas, extras: _Extras,
            notes: list[str], on_progress: Progress | None) -> None:
    """Writes the MP4 (video frames of every clip in order, audio and cues interleaved)."""
    total = sum(clip.frames for clip in clips)
    with ExitStack() as stack:
        container = stack.enter_context(av.open(str(path), mode="w", format="mp4",
                                                options={"movflags": "+faststart"}))
        sound = stack.enter_context(av.open(str(extras.soundtrack)))
        muxer = _Muxer(container, canvas, sound)
        captions = None if extras.subtitles is None else SubtitleMuxer(
            container, extras.subtitles, total / canvas.fps, notes)
        # Frames are decoded (and drawn on) on a worker thread while this one encodes.
        for first, frame in prefetch(_timeline_frames(clips, canvas, notes, extras.frame_hook),
                                     8):
            muxer.add(frame, keyframe=first)
            if captions is not None:
                container.mux(captions.until(muxer.frames / canvas.fps))
            if on_progress is not None and (muxer.frames % PROGRESS_EVERY == 0
                                            or muxer.frames == total):
                on_progress(muxer.frames, total)
        if captions is not None:
            container.mux(captions.until(float("inf")))
        muxer.finish()


def _timeline_frames(clips: Sequence[ClipInput], canvas: _Canvas, notes: list[str],
                     frame_hook: FrameHook | None) -> Iterator[tuple[bool, av.VideoFrame]]:
    """(starts a shot, frame) for every frame of the video, hook applied."""
    number = 0
    for clip in clips:
        for index, frame in enumerate(_clip_frames(clip, canvas, notes)):
            if frame_hook is not None:
                frame = _apply_hook(frame_hook, number, frame, canvas)
            yield index == 0, frame
            number += 1


def _check_arguments(clips: Sequence[ClipInput], canvas: _Canvas) -> None:
    if not clips:
        raise invalid("no clips to assemble; render at least one shot", reason="NO_CLIPS")
    if canvas.fps <= 0:
        raise invalid(f"fps is {canvas.fps}; pass a positive frame rate")
    if canvas.width <= 0 or canvas.height <= 0 or canvas.width % 2 or canvas.height % 2:
        raise invalid(f"output size {canvas.width}x{canvas.height} is not usable for yuv420p "
                      "H.264; pass positive even numbers", reason="SIZE_INVALID")
    for clip in clips:
        if clip.frames <= 0:
            raise invalid(f"shot {clip.shot_id} asks for {clip.frames} frames; every shot needs "
                          "at least one", reason="FRAMES_INVALID")


# --- video -----------------------------------------------------------------------------------


class _Muxer:
    """Encodes video frames with pts = frame index and interleaves the audio track's packets."""

    def __init__(self, container: OutputContainer, canvas: _Canvas,
                 sound: InputContainer) -> None:
        self.container, self.canvas = container, canvas
        self.video = container.add_stream("libx264", rate=canvas.fps)
        self.video.width, self.video.height = canvas.width, canvas.height
        self.video.pix_fmt = "yuv420p"
        tag_bt709(self.video)
        #: Frame timestamps are in frames; the muxer picks its own stream time base.
        self.time_base = Fraction(1, canvas.fps)
        self.video.options = {"crf": str(CRF), "preset": PRESET}
        self.video.thread_type = "FRAME"  # x264 frame threads: more of the cores than slices
        self.sound = container.add_stream_from_template(sound.streams.audio[0])
        self._packets = (packet for packet in sound.demux(sound.streams.audio[0])
                         if packet.dts is not None)
        self._next: Packet | None = next(self._packets, None)
        self.frames = 0

    def add(self, frame: av.VideoFrame, *, keyframe: bool) -> None:
        frame = bt709_yuv420p(frame)
        frame.pts, frame.duration = self.frames, 1
        frame.time_base = self.time_base
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        self.container.mux(self.video.encode(frame))
        self.frames += 1
        self._audio_until(Fraction(self.frames, self.canvas.fps))

    def finish(self) -> None:
        self._audio_until(None)
        self.container.mux(self.video.encode(None))

    def _audio_until(self, time_s: Fraction | None) -> None:
        """Muxes the audio packets that start before `time_s` (None: all that are left)."""
        while self._next is not None and (
                time_s is None or (self._next.dts or 0) * self._next.time_base < time_s):
            self._next.stream = self.sound
            self.container.mux(self._next)
            self._next = next(self._packets, None)


def _clip_frames(clip: ClipInput, canvas: _Canvas, notes: list[str]) -> Iterator[av.VideoFrame]:
    """Exactly `clip.frames` frames of the clip at the canvas size, holding its last frame."""
    taken = 0
    last: av.VideoFrame | None = None
    with _open_clip(clip) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        _note_clip_format(clip, stream.width, stream.height, stream.average_rate, canvas, notes)
        try:
            for decoded in container.decode(stream):
                if taken == clip.frames:
                    _note_extra(clip, stream.frames, notes)
                    break
                last = _fit(decoded, canvas)
                taken += 1
                yield last
        except av.FFmpegError as exc:
            raise _bad_clip(clip, f"fails to decode after {taken} frames ({exc})") from None
    if last is None:
        raise _bad_clip(clip, "has no frames")
    if taken < clip.frames:
        notes.append(f"{clip.shot_id}: the clip has {taken} frames but the shot needs "
                     f"{clip.frames}; held its last frame for {clip.frames - taken} more")
        for _ in range(clip.frames - taken):
            yield last


def _open_clip(clip: ClipInput) -> InputContainer:
    try:
        container = av.open(str(clip.path))
    except av.FFmpegError as exc:
        raise _bad_clip(clip, f"is not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise _bad_clip(clip, "has no video stream")
    return container


def _bad_clip(clip: ClipInput, problem: str) -> KantokuError:
    return invalid(f"the clip of shot {clip.shot_id} ({clip.path}) {problem}; render the shot "
                   "again", reason="CLIP_INVALID", path=str(clip.path))


def _note_clip_format(clip: ClipInput, width: int, height: int, rate: Fraction | None,
                      canvas: _Canvas, notes: list[str]) -> None:
    if (width, height) != (canvas.width, canvas.height):
        scaled = _fitted_size(width, height, canvas)
        bars = "" if scaled == (canvas.width, canvas.height) else " and letterboxed"
        notes.append(f"{clip.shot_id}: the clip is {width}x{height}; scaled to "
                     f"{scaled[0]}x{scaled[1]}{bars} to fit {canvas.width}x{canvas.height}")
    if rate and rate != canvas.fps:
        notes.append(f"{clip.shot_id}: the clip is {float(rate):g} fps; its frames were taken "
                     f"one for one at {canvas.fps} fps")


def _note_extra(clip: ClipInput, known_frames: int, notes: list[str]) -> None:
    have = f"has {known_frames} frames" if known_frames > clip.frames else "is longer"
    notes.append(f"{clip.shot_id}: the clip {have} but the shot needs {clip.frames}; dropped "
                 "the rest")


def _fitted_size(width: int, height: int, canvas: _Canvas) -> tuple[int, int]:
    scale = min(canvas.width / width, canvas.height / height)
    return (min(canvas.width, max(1, round(width * scale))),
            min(canvas.height, max(1, round(height * scale))))


def _fit(frame: av.VideoFrame, canvas: _Canvas) -> av.VideoFrame:
    """The frame itself when it has the canvas size, else scaled to fit and centred on black."""
    if (frame.width, frame.height) == (canvas.width, canvas.height):
        return frame
    width, height = _fitted_size(frame.width, frame.height, canvas)
    scaled = frame.to_ndarray(width=width, height=height, format="rgb24",
                              interpolation="BICUBIC")
    board = np.zeros((canvas.height, canvas.width, 3), dtype=np.uint8)
    top, left = (canvas.height - height) // 2, (canvas.width - width) // 2
    board[top:top + height, left:left + width] = scaled
    return av.VideoFrame.from_ndarray(board, format="rgb24")


def _apply_hook(hook: FrameHook, index: int, frame: av.VideoFrame,
                canvas: _Canvas) -> av.VideoFrame:
    burn_yuv = getattr(hook, "burn_yuv", None)
    if burn_yuv is not None:
        # The hook draws into the planes the encoder takes: no colour conversion per frame.
        frame = bt709_yuv420p(frame)
        planes = frame.to_ndarray()
        return tagged_bt709(av.VideoFrame.from_ndarray(planes, format="yuv420p")) \
            if burn_yuv(index, planes) else frame
    rgb = hook(index, frame.to_ndarray(format="rgb24"))
    expected = (canvas.height, canvas.width, 3)
    if rgb.shape != expected or rgb.dtype != np.uint8:
        raise internal(f"frame_hook returned a {rgb.dtype} array of shape {rgb.shape} for frame "
                       f"{index}; it must return uint8 of shape {expected}",
                       reason="FRAME_HOOK_INVALID")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")


