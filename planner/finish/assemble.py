"""Assemble the finished video: shot clips concatenated frame-accurately, song and dialogue mixed.

Video: every clip is decoded with PyAV and exactly `ClipInput.frames` frames are taken from it
(the last frame is held when a clip is short, extra frames are dropped when it is long), scaled
and letterboxed when its size differs, and encoded as one H.264 stream (libx264, yuv420p,
preset `veryfast`, CRF 20, `+faststart`, the settings of `kantoku.services.video.encode`) with
pts = frame index at exactly `fps`. Every shot starts on a keyframe, so an editor can seek to it.

Audio: one AAC track (48 kHz stereo) exactly as long as the video. The song is decoded as it is
(resampled only when its rate is not 48 kHz, mono duplicated to both channels), then padded with
silence or trimmed to the video. Mixing: under each dialogue line the song is ducked by 6 dB
(50 ms linear ramps either side), the lines are added at their own level, and only if the sum
would still clip (a sample over full scale) a look-ahead peak limiter (5 ms attack and release)
brings it under full scale. A song alone is never touched unless it clips itself.

Every change the assembler makes to its inputs is written to `AssemblyReport.notes`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from av.video.frame import PictureType
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import KantokuError, internal, invalid
from kantoku.services._core.streaming import prefetch

SAMPLE_RATE_HZ = 48_000
AUDIO_LAYOUT = "stereo"
AUDIO_BIT_RATE = 192_000
#: x264 speed/size trade-off; the same as the per-shot clips (`services/video/encode.py`).
PRESET = "veryfast"
CRF = 20
PROGRESS_EVERY = 30
DUCK_DB = -6.0
DUCK_RAMP_S = 0.05
LIMIT_CEILING = 1.0
LIMIT_WINDOW_S = 0.005

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


@dataclass(frozen=True)
class DialogueInput:
    """One spoken line (a WAV file) placed at `start_s` seconds into the video."""

    path: Path
    start_s: float


@dataclass
class AssemblyReport:
    """What was written, and every change made to the inputs on the way."""

    path: Path
    frames: int
    duration_s: float
    sha256: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Canvas:
    width: int
    height: int
    fps: int


def assemble_video(clips: Sequence[ClipInput], *, fps: int, width_px: int, height_px: int,
                   out: Path, song: Path | None = None, dialogue: Sequence[DialogueInput] = (),
                   frame_hook: FrameHook | None = None,
                   on_progress: Progress | None = None) -> AssemblyReport:
    """Concatenate `clips` into one MP4 at `out` with the song and dialogue mixed under it.

    Args:
        clips: the shots in order; each contributes exactly `frames` frames.
        fps: output frame rate (frames per second, an integer like the plan's).
        width_px: output width; clips of another size are scaled and letterboxed.
        height_px: output height.
        out: the MP4 to write; written under a temporary name and renamed when complete, so a
            failure never leaves a half-written file.
        song: an audio file (WAV, FLAC, MP3, OGG, ...) to play under the whole video.
        dialogue: spoken lines to mix over the song (or over silence).
        frame_hook: called as `frame_hook(global_frame_index, rgb)` for every frame; returns the
            RGB frame to encode (same shape), e.g. with subtitles burnt in.
        on_progress: called as `on_progress(done_frames, total_frames)` every 30 frames and at
            the end.

    Returns:
        The report: path, frame count, duration, sha256 of the file and notes.

    Raises:
        KantokuError: INVALID_REQUEST when a clip, the song or a dialogue line is missing or
            cannot be decoded, or the arguments are unusable.
    """
    canvas = _Canvas(width_px, height_px, fps)
    _check_arguments(clips, canvas)
    for clip in clips:
        _require_file(clip.path, f"the clip of shot {clip.shot_id}",
                      "render the shot again or fix its path")
    total = sum(clip.frames for clip in clips)
    notes: list[str] = []
    audio = mix_audio(_samples_for(total, fps), song, dialogue, notes)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(out)
    try:
        _encode(partial, clips, canvas, audio, notes, frame_hook, on_progress)
        os.replace(partial, out)
    except av.FFmpegError as exc:
        raise internal(f"could not write {out.name} ({exc}); check free disk space and that "
                       "the folder is writable", reason="ASSEMBLY_FAILED") from None
    finally:
        partial.unlink(missing_ok=True)
    return AssemblyReport(out, total, total / fps, sha256_file(out), notes)


def _encode(path: Path, clips: Sequence[ClipInput], canvas: _Canvas, audio: np.ndarray,
            notes: list[str], frame_hook: FrameHook | None, on_progress: Progress | None) -> None:
    """Writes the MP4 (video frames of every clip in order, audio interleaved) to `path`."""
    total = sum(clip.frames for clip in clips)
    with av.open(str(path), mode="w", format="mp4",
                 options={"movflags": "+faststart"}) as container:
        muxer = _Muxer(container, canvas, audio)
        # Frames are decoded (and drawn on) on a worker thread while this one encodes.
        for first, frame in prefetch(_timeline_frames(clips, canvas, notes, frame_hook), 8):
            muxer.add(frame, keyframe=first)
            if on_progress is not None and (muxer.frames % PROGRESS_EVERY == 0
                                            or muxer.frames == total):
                on_progress(muxer.frames, total)
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


def _require_file(path: Path, what: str, todo: str) -> None:
    if not Path(path).is_file():
        raise invalid(f"{what} ({path}) does not exist; {todo}", reason="FILE_MISSING",
                      path=str(path))


def _partial_path(out: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    return Path(name)



def _samples_for(frames: int, fps: int) -> int:
    """Audio samples at 48 kHz that last exactly as long as `frames` video frames (rounded)."""
    return (frames * SAMPLE_RATE_HZ + fps // 2) // fps


# --- video -----------------------------------------------------------------------------------


class _Muxer:
    """Encodes video frames with pts = frame index and interleaves the audio with them."""

    def __init__(self, container: OutputContainer, canvas: _Canvas, audio: np.ndarray) -> None:
        self.container, self.canvas, self.audio = container, canvas, audio
        self.video = container.add_stream("libx264", rate=canvas.fps)
        self.video.width, self.video.height = canvas.width, canvas.height
        self.video.pix_fmt = "yuv420p"
        #: Frame timestamps are in frames; the muxer picks its own stream time base.
        self.time_base = Fraction(1, canvas.fps)
        self.video.options = {"crf": str(CRF), "preset": PRESET}
        self.video.thread_type = "FRAME"  # x264 frame threads: more of the cores than slices
        self.sound = container.add_stream("aac", rate=SAMPLE_RATE_HZ, layout=AUDIO_LAYOUT)
        self.sound.bit_rate = AUDIO_BIT_RATE
        self.frames = 0
        self.samples = 0

    def add(self, frame: av.VideoFrame, *, keyframe: bool) -> None:
        frame.pts, frame.duration = self.frames, 1
        frame.time_base = self.time_base
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        self.container.mux(self.video.encode(frame))
        self.frames += 1
        self._audio_until(_samples_for(self.frames, self.canvas.fps))

    def finish(self) -> None:
        self._audio_until(self.audio.shape[1])
        self.container.mux(self.video.encode(None))
        self.container.mux(self.sound.encode(None))

    def _audio_until(self, end: int) -> None:
        end = min(end, self.audio.shape[1])
        if end <= self.samples:
            return
        chunk = np.ascontiguousarray(self.audio[:, self.samples:end])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=AUDIO_LAYOUT)
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = self.samples
        frame.time_base = Fraction(1, SAMPLE_RATE_HZ)
        self.container.mux(self.sound.encode(frame))
        self.samples = end


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
    if burn_yuv is not None and frame.format.name == "yuv420p":
        # The hook draws into the planes the encoder takes: no colour conversion per frame.
        planes = frame.to_ndarray()
        return av.VideoFrame.from_ndarray(planes, format="yuv420p") \
            if burn_yuv(index, planes) else frame
    rgb = hook(index, frame.to_ndarray(format="rgb24"))
    expected = (canvas.height, canvas.width, 3)
    if rgb.shape != expected or rgb.dtype != np.uint8:
        raise internal(f"frame_hook returned a {rgb.dtype} array of shape {rgb.shape} for frame "
                       f"{index}; it must return uint8 of shape {expected}",
                       reason="FRAME_HOOK_INVALID")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")


# --- audio -----------------------------------------------------------------------------------


def mix_audio(samples: int, song: Path | None, dialogue: Sequence[DialogueInput],
              notes: list[str]) -> np.ndarray:
    """The soundtrack: (2, samples) float32 at 48 kHz; see the module docstring for the mix.

    Args:
        samples: length of the soundtrack (the video's duration at 48 kHz).
        song: audio file played from the start, padded with silence or trimmed to `samples`.
        dialogue: lines placed at their start times; a line running past the end is trimmed.
        notes: receives a line for every padding, trimming, dropped line and peak limiting.
    """
    mix = np.zeros((2, samples), dtype=np.float32)
    if song is not None:
        _place_song(mix, decode_audio(song, "the song", "pass a WAV, FLAC, MP3 or OGG file"),
                    song, notes)
    if dialogue:
        voices, duck = _place_dialogue(samples, dialogue, notes)
        if song is not None:
            mix *= duck
        mix += voices
    return _limit_peaks(mix, notes)


def decode_audio(path: Path, what: str, todo: str) -> np.ndarray:
    """(2, n) float32 samples of an audio file at 48 kHz, decoded with PyAV (FFmpeg).

    Samples are converted to float exactly; the rate is converted only when it is not 48 kHz;
    mono is duplicated to both channels and more than two channels are downmixed to stereo.

    Raises:
        KantokuError: INVALID_REQUEST naming `path` when it is missing or not decodable audio.
    """
    _require_file(path, f"{what}", todo)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise _bad_audio(path, what, "has no audio stream", todo)
            chunks = _decode_stream(container)
    except av.FFmpegError as exc:
        raise _bad_audio(path, what, f"is not readable audio ({exc})", todo) from None
    if not chunks:
        raise _bad_audio(path, what, "decodes to no samples", todo)
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if samples.shape[0] == 1:
        samples = np.repeat(samples, 2, axis=0)
    return samples


def _decode_stream(container: InputContainer) -> list[np.ndarray]:
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(
        format="fltp", layout=AUDIO_LAYOUT if stream.channels > 2 else None,
        rate=SAMPLE_RATE_HZ if stream.rate != SAMPLE_RATE_HZ else None)
    chunks: list[np.ndarray] = []
    for frame in container.decode(stream):
        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    return [chunk for chunk in chunks if chunk.shape[1]]


def _bad_audio(path: Path, what: str, problem: str, todo: str) -> KantokuError:
    return invalid(f"{what} ({path}) {problem}; {todo}", reason="AUDIO_INVALID", path=str(path))


def _place_song(mix: np.ndarray, song: np.ndarray, path: Path, notes: list[str]) -> None:
    length = min(song.shape[1], mix.shape[1])
    mix[:, :length] = song[:, :length]
    difference = (song.shape[1] - mix.shape[1]) / SAMPLE_RATE_HZ
    if difference > 0:
        notes.append(f"song {path.name}: trimmed the last {difference:.3f} s to the video length")
    elif difference < 0:
        notes.append(f"song {path.name}: {-difference:.3f} s shorter than the video; padded "
                     "with silence")


def _place_dialogue(samples: int, dialogue: Sequence[DialogueInput],
                    notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The dialogue lines summed at their places, and the song's ducking gain (1 = none)."""
    voices = np.zeros((2, samples), dtype=np.float32)
    duck = np.ones(samples, dtype=np.float32)
    for line in dialogue:
        if line.start_s < 0:
            raise invalid(f"dialogue {line.path} starts at {line.start_s} s; pass a start time "
                          "of 0 or more", reason="DIALOGUE_INVALID")
        audio = decode_audio(line.path, "the dialogue line", "synthesize the line again")
        start = round(line.start_s * SAMPLE_RATE_HZ)
        length = min(audio.shape[1], samples - start)
        if length <= 0:
            notes.append(f"dialogue {line.path.name} at {line.start_s:.3f} s: starts after the "
                         "end of the video; left out")
            continue
        if length < audio.shape[1]:
            notes.append(f"dialogue {line.path.name} at {line.start_s:.3f} s: trimmed the last "
                         f"{(audio.shape[1] - length) / SAMPLE_RATE_HZ:.3f} s at the end of the "
                         "video")
        voices[:, start:start + length] += audio[:, :length]
        _duck(duck, start, start + length)
    return voices, duck


def _duck(gain: np.ndarray, start: int, end: int) -> None:
    """Lowers `gain` to DUCK_DB over [start, end) with linear ramps of DUCK_RAMP_S either side."""
    ramp = round(DUCK_RAMP_S * SAMPLE_RATE_HZ)
    low, high = max(0, start - ramp), min(gain.shape[0], end + ramp)
    level = 10 ** (DUCK_DB / 20)
    shape = np.interp(np.arange(low, high), [start - ramp, start, end, end + ramp],
                      [1.0, level, level, 1.0]).astype(np.float32)
    np.minimum(gain[low:high], shape, out=gain[low:high])


def _limit_peaks(mix: np.ndarray, notes: list[str]) -> np.ndarray:
    """A look-ahead limiter that acts only where a sample would exceed LIMIT_CEILING.

    The gain is the needed gain's running minimum over ±window, smoothed by a moving average over
    the same ±window, so it never exceeds the needed gain and changes over ~2 windows.
    """
    peaks = np.abs(mix).max(axis=0, initial=0.0)
    peak = float(peaks.max(initial=0.0))
    if peak <= LIMIT_CEILING:
        return mix
    needed = np.minimum(1.0, LIMIT_CEILING / np.maximum(peaks, 1e-9))
    size = 2 * round(LIMIT_WINDOW_S * SAMPLE_RATE_HZ) + 1
    gain = uniform_filter1d(minimum_filter1d(needed, size, mode="nearest"), size, mode="nearest")
    gain = np.minimum(gain, needed).astype(np.float32)
    notes.append(f"audio: the mix peaked at {20 * np.log10(peak):+.1f} dBFS; limited to "
                 f"{20 * np.log10(LIMIT_CEILING):+.1f} dBFS")
    return mix * gain
