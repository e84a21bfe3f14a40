"""The editable timeline (`timeline.otio`): shots, song, dialogue and lyrics in OpenTimelineIO.

Track "shots" (video) holds one clip per shot in plan order, each exactly the shot's frames at
the plan's fps and pointing at the shot's clip file; track "song" (audio) holds the song when
there is one; track "dialogue" (audio, a second one where lines overlap) holds each spoken line
at its time; each lyric line is a marker on the timeline's stack. Every media reference carries
its `available_range` (the media file's real length) and the video ones their
`available_image_bounds` (width/height as an aspect, height 1), so editors' adapters can conform
the clips; the frame size is also where the FCP 7 XML and AAF adapters look for it (sequence
`samplecharacteristics`, the AAF essence descriptor), so converted projects are vertical when
the video is. Media paths are relative to the timeline's folder, so the job folder can be moved
as a whole. Each shot clip carries `metadata["kantoku"]`: shot id, description, start and end
times, the provenance step ids that made it, the clip's sha256 and the shot's editable fields
(`EDITABLE_FIELDS`: prompt, seed, size, move, dialogue, ...), which `kantoku edit` reads back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import opentimelineio as otio

from kantoku.planner.music.lyrics import LyricLine
from kantoku.planner.planning.plan import Plan, Shot
from kantoku.services._core.errors import invalid
from kantoku.services._core.files import write_text_atomic

METADATA_KEY = "kantoku"
SHOTS_TRACK = "shots"
SONG_TRACK = "song"
DIALOGUE_TRACK = "dialogue"
ADAPTER = "otio_json"
LYRIC_MARKER_COLOR = otio.schema.MarkerColor.YELLOW
#: Shot fields each shot clip carries in `metadata["kantoku"]`; `kantoku edit` reads them back.
EDITABLE_FIELDS = ("description", "shot_size", "camera_angle", "camera_move", "characters",
                   "location", "time_of_day", "dialogue", "image_prompt", "seed", "transition",
                   "section")


@dataclass(frozen=True)
class TimelineShot:
    """A rendered shot: its clip file, the clip's sha256 and the provenance steps behind it."""

    shot_id: str
    clip: Path
    sha256: str
    provenance_ids: list[str]


@dataclass(frozen=True)
class TimelineLine:
    """A spoken line: its WAV, where it starts in the video, and who says what in which shot."""

    shot_id: str
    wav: Path
    start_s: float
    speaker: str
    text: str


def write_timeline(plan: Plan, shots: Sequence[TimelineShot], out: Path, *,
                   song: Path | None = None, video: Path | None = None,
                   dialogue: Sequence[TimelineLine] = (),
                   lyrics: Sequence[LyricLine] = ()) -> None:
    """Write the OTIO timeline of `plan` to `out` (written whole, then renamed into place).

    Args:
        plan: the shot plan; its shots give the order and the frame counts.
        shots: one rendered clip per plan shot, in any order.
        out: the `.otio` file to write.
        song: the song (inside the job folder, so the folder travels whole), placed on an audio
            track from 0 for the whole running time.
        video: the assembled video, recorded in the timeline's metadata.
        dialogue: spoken lines, placed on audio tracks at their start times.
        lyrics: lyric lines, as markers on the timeline.

    Raises:
        KantokuError: INVALID_REQUEST when a plan shot has no clip, or a clip is not in the plan.
    """
    out = Path(out)
    folder = out.parent
    by_id = _shots_by_id(plan, shots)
    timeline = otio.schema.Timeline(name=plan.title,
                                    global_start_time=otio.opentime.RationalTime(0, plan.fps))
    timeline.metadata[METADATA_KEY] = _timeline_metadata(plan, video, folder)
    timeline.metadata["fcp_xml"] = _fcp_sequence_format(plan)
    track = otio.schema.Track(name=SHOTS_TRACK, kind=otio.schema.TrackKind.Video)
    for shot in plan.shots:
        track.append(_shot_clip(plan, shot, by_id[shot.id], folder))
    timeline.tracks.append(track)
    if song is not None:
        timeline.tracks.append(_song_track(plan, song, folder))
    for index, lines in enumerate(_lanes(dialogue, plan.fps)):
        name = DIALOGUE_TRACK if index == 0 else f"{DIALOGUE_TRACK} {index + 1}"
        timeline.tracks.append(_dialogue_track(name, lines, plan.fps, folder))
    for line in lyrics:
        timeline.tracks.markers.append(_lyric_marker(line, plan.fps))
    write_text_atomic(out, otio.adapters.write_to_string(timeline, ADAPTER))


def read_timeline(path: Path) -> otio.schema.Timeline:
    """The timeline stored at `path` (OTIO JSON).

    Raises:
        KantokuError: INVALID_REQUEST when the file is missing or is not an OTIO timeline.
    """
    path = Path(path)
    if not path.is_file():
        raise invalid(f"timeline {path} does not exist; assemble the job first",
                      reason="TIMELINE_MISSING", path=str(path))
    try:
        timeline = otio.adapters.read_from_file(str(path), adapter_name=ADAPTER)
    except (otio.exceptions.OTIOError, ValueError) as exc:
        raise invalid(f"timeline {path} is not readable OTIO JSON ({exc}); write it again",
                      reason="TIMELINE_INVALID", path=str(path)) from None
    if not isinstance(timeline, otio.schema.Timeline):
        raise invalid(f"{path} holds a {type(timeline).__name__}, not a timeline; write it again",
                      reason="TIMELINE_INVALID", path=str(path))
    return timeline


def media_url(path: Path, folder: Path) -> str:
    """`path` relative to `folder` (POSIX separators) when possible, else an absolute file URL."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).resolve().as_uri()


def _shots_by_id(plan: Plan, shots: Sequence[TimelineShot]) -> dict[str, TimelineShot]:
    by_id: dict[str, TimelineShot] = {}
    for shot in shots:
        if shot.shot_id in by_id:
            raise invalid(f"shot {shot.shot_id} has two clips; pass one per shot",
                          reason="TIMELINE_SHOTS_INVALID")
        by_id[shot.shot_id] = shot
    planned = {shot.id for shot in plan.shots}
    missing = [shot.id for shot in plan.shots if shot.id not in by_id]
    extra = sorted(set(by_id) - planned)
    if missing:
        raise invalid(f"no clip for shot(s) {', '.join(missing)}; render them first",
                      reason="TIMELINE_SHOTS_INVALID")
    if extra:
        raise invalid(f"clip(s) for {', '.join(extra)}, which the plan does not have; pass only "
                      "the plan's shots", reason="TIMELINE_SHOTS_INVALID")
    return by_id


def _frames_range(frames: int, fps: int) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(otio.opentime.RationalTime(0, fps),
                                   otio.opentime.RationalTime(frames, fps))


def _timeline_metadata(plan: Plan, video: Path | None, folder: Path) -> dict[str, Any]:
    metadata: dict[str, Any] = {"title": plan.title, "fps": plan.fps, "width_px": plan.width_px,
                                "height_px": plan.height_px, "duration_s": plan.duration_s,
                                "planner": plan.planner}
    if video is not None:
        metadata["video"] = media_url(video, folder)
    return metadata


def _fcp_sequence_format(plan: Plan) -> dict[str, Any]:
    """The sequence format the FCP 7 XML adapter writes (Premiere, Resolve read it)."""
    return {"media": {"video": {"format": {"samplecharacteristics": {
        "width": plan.width_px, "height": plan.height_px, "pixelaspectratio": "square",
        "anamorphic": "FALSE", "fielddominance": "none",
        "rate": {"timebase": plan.fps, "ntsc": "FALSE"}}}}}}


def media_length_s(path: Path) -> float:
    """The playing time of a media file in seconds (PyAV; the longest stream)."""
    try:
        with av.open(str(path)) as container:
            lengths = [float(s.duration * s.time_base) for s in container.streams
                       if s.duration is not None and s.time_base is not None]
            if not lengths and container.duration is not None:
                lengths = [container.duration / av.time_base]
    except (av.error.FFmpegError, OSError) as exc:
        raise invalid(f"{path}: cannot read its length ({exc}); render it again",
                      reason="TIMELINE_MEDIA_INVALID", path=str(path)) from None
    if not lengths:
        raise invalid(f"{path}: its length is unknown; render it again",
                      reason="TIMELINE_MEDIA_INVALID", path=str(path))
    return max(lengths)


def _reference(path: Path, folder: Path, fps: int, used_frames: int,
               image_size: tuple[int, int] | None = None) -> otio.schema.ExternalReference:
    """A reference to `path` with its real length (never shorter than what the clip uses)."""
    frames = max(used_frames, int(media_length_s(path) * fps + 1e-6))
    reference = otio.schema.ExternalReference(target_url=media_url(path, folder),
                                              available_range=_frames_range(frames, fps))
    if image_size is not None:
        width, height = image_size
        aspect = width / height
        reference.available_image_bounds = otio.schema.Box2d(
            otio.schema.V2d(-aspect / 2, -0.5), otio.schema.V2d(aspect / 2, 0.5))
        # Where the AAF adapter takes the frame size from (it assumes 1920x1080 otherwise).
        reference.metadata["AAF"] = {"EssenceDescription": {
            "StoredWidth": width, "StoredHeight": height,
            "ImageAspectRatio": f"{width}/{height}"}}
    return reference


def _shot_clip(plan: Plan, shot: Shot, rendered: TimelineShot, folder: Path) -> otio.schema.Clip:
    metadata = {"shot_id": shot.id, "start_s": shot.start_s, "end_s": shot.end_s,
                "provenance_ids": [str(i) for i in rendered.provenance_ids],
                "sha256": rendered.sha256,
                **shot.model_dump(mode="json", include=set(EDITABLE_FIELDS))}
    frames = plan.frames(shot)
    return otio.schema.Clip(
        name=shot.id,
        media_reference=_reference(rendered.clip, folder, plan.fps, frames,
                                   (plan.width_px, plan.height_px)),
        source_range=_frames_range(frames, plan.fps),
        metadata={METADATA_KEY: metadata})


def _song_track(plan: Plan, song: Path, folder: Path) -> otio.schema.Track:
    frames = sum(plan.frames(shot) for shot in plan.shots)
    clip = otio.schema.Clip(
        name=Path(song).name,
        media_reference=_reference(song, folder, plan.fps, frames),
        source_range=_frames_range(frames, plan.fps))
    return otio.schema.Track(name=SONG_TRACK, children=[clip], kind=otio.schema.TrackKind.Audio)


def _lanes(lines: Sequence[TimelineLine], fps: int) -> list[list[tuple[TimelineLine, int, int]]]:
    """Lines as (line, start frame, frames), on as few non-overlapping lanes as possible."""
    lanes: list[list[tuple[TimelineLine, int, int]]] = []
    for line in sorted(lines, key=lambda item: item.start_s):
        start = round(line.start_s * fps)
        frames = max(1, round(media_length_s(line.wav) * fps))
        lane = next((lane for lane in lanes if lane[-1][1] + lane[-1][2] <= start), None)
        if lane is None:
            lanes.append(lane := [])
        lane.append((line, start, frames))
    return lanes


def _dialogue_track(name: str, lane: list[tuple[TimelineLine, int, int]], fps: int,
                    folder: Path) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    at = 0
    for line, start, frames in lane:
        if start > at:
            track.append(otio.schema.Gap(source_range=_frames_range(start - at, fps)))
        track.append(otio.schema.Clip(
            name=f"{line.shot_id} {line.speaker}",
            media_reference=_reference(line.wav, folder, fps, frames),
            source_range=_frames_range(frames, fps),
            metadata={METADATA_KEY: {"shot_id": line.shot_id, "speaker": line.speaker,
                                     "text": line.text, "start_s": line.start_s}}))
        at = start + frames
    return track


def _lyric_marker(line: LyricLine, fps: int) -> otio.schema.Marker:
    start = round(line.start_s * fps)
    length = max(1, round(line.end_s * fps) - start)
    return otio.schema.Marker(
        name=line.text.replace("\n", " / "),
        marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(start, fps),
                                             otio.opentime.RationalTime(length, fps)),
        color=LYRIC_MARKER_COLOR,
        metadata={METADATA_KEY: {"lyric": line.text, "start_s": line.start_s,
                                 "end_s": line.end_s}})
