"""The editable timeline (`timeline.otio`): the shots and the song as OpenTimelineIO clips.

Track "shots" (video) holds one clip per shot in plan order, each exactly the shot's frames at
the plan's fps and pointing at the shot's clip file; track "song" (audio) holds the song when
there is one. Media paths are relative to the timeline's folder when possible, so the job folder
can be moved as a whole. Each shot clip carries `metadata["kantoku"]`: shot id, description,
start and end times, the provenance step ids that made it and the clip's sha256.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import opentimelineio as otio

from kantoku.planner.planning.plan import Plan, Shot
from kantoku.services._core.errors import invalid
from kantoku.services._core.files import write_text_atomic

METADATA_KEY = "kantoku"
SHOTS_TRACK = "shots"
SONG_TRACK = "song"
ADAPTER = "otio_json"


@dataclass(frozen=True)
class TimelineShot:
    """A rendered shot: its clip file, the clip's sha256 and the provenance steps behind it."""

    shot_id: str
    clip: Path
    sha256: str
    provenance_ids: list[str]


def write_timeline(plan: Plan, shots: Sequence[TimelineShot], out: Path, *,
                   song: Path | None = None, video: Path | None = None) -> None:
    """Write the OTIO timeline of `plan` to `out` (written whole, then renamed into place).

    Args:
        plan: the shot plan; its shots give the order and the frame counts.
        shots: one rendered clip per plan shot, in any order.
        out: the `.otio` file to write.
        song: the song, placed on an audio track from 0 for the whole running time.
        video: the assembled video, recorded in the timeline's metadata.

    Raises:
        KantokuError: INVALID_REQUEST when a plan shot has no clip, or a clip is not in the plan.
    """
    out = Path(out)
    folder = out.parent
    by_id = _shots_by_id(plan, shots)
    timeline = otio.schema.Timeline(name=plan.title,
                                    global_start_time=otio.opentime.RationalTime(0, plan.fps))
    timeline.metadata[METADATA_KEY] = _timeline_metadata(plan, video, folder)
    track = otio.schema.Track(name=SHOTS_TRACK, kind=otio.schema.TrackKind.Video)
    for shot in plan.shots:
        track.append(_shot_clip(plan, shot, by_id[shot.id], folder))
    timeline.tracks.append(track)
    if song is not None:
        timeline.tracks.append(_song_track(plan, song, folder))
    _write_text(out, otio.adapters.write_to_string(timeline, ADAPTER))


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


def _shot_clip(plan: Plan, shot: Shot, rendered: TimelineShot, folder: Path) -> otio.schema.Clip:
    metadata = {"shot_id": shot.id, "description": shot.description, "start_s": shot.start_s,
                "end_s": shot.end_s, "provenance_ids": [str(i) for i in rendered.provenance_ids],
                "sha256": rendered.sha256}
    return otio.schema.Clip(
        name=shot.id,
        media_reference=otio.schema.ExternalReference(target_url=media_url(rendered.clip,
                                                                           folder)),
        source_range=_frames_range(plan.frames(shot), plan.fps),
        metadata={METADATA_KEY: metadata})


def _song_track(plan: Plan, song: Path, folder: Path) -> otio.schema.Track:
    frames = sum(plan.frames(shot) for shot in plan.shots)
    clip = otio.schema.Clip(
        name=Path(song).name,
        media_reference=otio.schema.ExternalReference(target_url=media_url(song, folder)),
        source_range=_frames_range(frames, plan.fps))
    return otio.schema.Track(name=SONG_TRACK, children=[clip], kind=otio.schema.TrackKind.Audio)


def _write_text(out: Path, text: str) -> None:
    write_text_atomic(out, text)
