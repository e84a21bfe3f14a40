"""A timeline back from an editor, turned into the next version of the plan.

The picture track is read in order: each clip is a shot (found by its kantoku metadata, else by
its name or its media file's name, `sNNN`); its length on the timeline is the shot's new length;
the editable fields in its `metadata["kantoku"]` (prompt, seed, size, move, dialogue, ...) win
over the old plan's. A clip used twice becomes a new shot, a copy of the first. A gap (a lifted
clip) lengthens the shot before it, so the cut stays contiguous. Project files from other
editors are read through the same OTIO adapters `kantoku export` writes with; they carry cuts
and clip names, not kantoku's metadata, so content edits need the OTIO timeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio
from pydantic import ValidationError

from kantoku.planner.finish.export import FORMATS, quiet_adapters
from kantoku.planner.finish.timeline import EDITABLE_FIELDS, METADATA_KEY, SHOTS_TRACK
from kantoku.planner.planning.plan import Plan, Shot, plan_problems
from kantoku.services._core.errors import invalid, not_found

#: File suffixes and the adapter that reads them.
ADAPTERS = {".otio": "otio_json", **{f.suffix: f.adapter for f in FORMATS.values()}}


@dataclass
class EditedPlan:
    """The plan a timeline describes, which old shot each new one copies, and what was noted."""

    plan: Plan
    source_ids: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_editor_timeline(path: Path, fps: int) -> otio.schema.Timeline:
    """An edited timeline from OTIO JSON or an editor's project file (by its suffix).

    Raises:
        KantokuError: NOT_FOUND for a missing file; INVALID_REQUEST for an unknown suffix or
            a file its adapter cannot read.
    """
    path = Path(path)
    if not path.is_file():
        raise not_found(f"--timeline: {path} is not a file", reason="FILE_NOT_FOUND")
    adapter = ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise invalid(f"--timeline: {path.name} is not one of {', '.join(ADAPTERS)}",
                      reason="TIMELINE_FORMAT_UNKNOWN")
    options: dict[str, Any] = {"rate": fps} if adapter == "cmx_3600" else {}
    try:
        with quiet_adapters():
            timeline = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except Exception as exc:  # noqa: BLE001 - adapters raise anything on a broken file
        raise invalid(f"--timeline: {path.name} could not be read as {adapter} "
                      f"({type(exc).__name__}: {str(exc)[:200]})",
                      reason="TIMELINE_INVALID") from None
    if not isinstance(timeline, otio.schema.Timeline):
        raise invalid(f"--timeline: {path.name} holds no timeline", reason="TIMELINE_INVALID")
    return timeline


def plan_from_timeline(timeline: otio.schema.Timeline, previous: Plan,
                       characters: set[str]) -> EditedPlan:
    """The next plan: `previous` re-cut and re-described as the edited timeline says.

    Raises:
        KantokuError: INVALID_REQUEST naming the clip and field when the timeline has no
            picture track, a clip is not one of the job's shots, an edited field is not
            valid, or the new cut breaks a plan rule (e.g. a shot trimmed under 0.5 s).
    """
    track = _picture_track(timeline)
    fps = previous.fps
    by_id = {shot.id: shot for shot in previous.shots}
    next_number = max(int(shot.id[1:]) for shot in previous.shots) + 1
    edited = EditedPlan(plan=previous)
    shots: list[dict[str, Any]] = []
    at = 0
    pending_gap = 0
    for item in track:
        if isinstance(item, otio.schema.Transition):
            edited.notes.append(f"transition {item.name or ''} at frame {at} ignored: "
                                "kantoku cuts")
            continue
        frames = round(item.source_range.duration.rescaled_to(fps).value)
        if isinstance(item, otio.schema.Gap):
            if shots:
                shots[-1]["_frames"] += frames
                edited.notes.append(f"a gap of {frames} frames after {shots[-1]['id']} "
                                    "lengthens it")
            else:
                pending_gap += frames
            at += frames
            continue
        if not isinstance(item, otio.schema.Clip):
            raise invalid(f"timeline: {type(item).__name__} {item.name!r} on the picture track "
                          "is not a clip; flatten nested sequences first",
                          reason="TIMELINE_CLIP_INVALID")
        source = _source_shot(item, by_id)
        fields = _shot_fields(item, source)
        shot_id = source.id
        if any(s["id"] == shot_id for s in shots):
            shot_id = f"s{next_number:03d}"
            next_number += 1
            edited.source_ids[shot_id] = source.id
        shots.append({**fields, "id": shot_id, "_frames": frames + pending_gap,
                      "_clip": item.name})
        pending_gap = 0
        at += frames
    if not shots:
        raise invalid("timeline: the picture track has no clips; keep at least one shot",
                      reason="TIMELINE_EMPTY")
    edited.plan = _plan(previous, shots, characters)
    return edited


def _picture_track(timeline: otio.schema.Timeline) -> otio.schema.Track:
    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    named = [t for t in video if t.name == SHOTS_TRACK]
    if not (named or video):
        raise invalid("timeline: no video track; the shots are on the picture track",
                      reason="TIMELINE_NO_PICTURE")
    if len(video) > 1 and not named:
        raise invalid(f"timeline: {len(video)} video tracks; keep the shots on one",
                      reason="TIMELINE_NO_PICTURE")
    return (named or video)[0]


def _source_shot(clip: otio.schema.Clip, by_id: dict[str, Shot]) -> Shot:
    metadata = clip.metadata.get(METADATA_KEY) or {}
    candidates = [str(metadata.get("shot_id", "")), clip.name]
    reference = clip.media_reference
    if isinstance(reference, otio.schema.ExternalReference) and reference.target_url:
        candidates.append(PurePosixPath(unquote(urlparse(reference.target_url).path)).stem)
    for candidate in candidates:
        if candidate in by_id:
            return by_id[candidate]
    raise invalid(f"timeline: clip {clip.name!r} is not one of this job's shots "
                  f"({', '.join(by_id)}); kantoku re-renders the shots it made",
                  reason="TIMELINE_CLIP_UNKNOWN")


def _shot_fields(clip: otio.schema.Clip, source: Shot) -> dict[str, Any]:
    fields = source.model_dump(mode="json", exclude={"id", "start_s", "end_s", "lyrics"})
    metadata = clip.metadata.get(METADATA_KEY) or {}
    for name in EDITABLE_FIELDS:
        if name in metadata:
            value = metadata[name]
            fields[name] = _plain(value)
    return fields


def _plain(value: Any) -> Any:
    """OTIO's AnyDictionary / AnyVector as plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return value
    if hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


def _plan(previous: Plan, shots: list[dict[str, Any]], characters: set[str]) -> Plan:
    fps, at = previous.fps, 0
    built = []
    for item in shots:
        frames = item.pop("_frames")
        clip = item.pop("_clip")
        try:
            built.append(Shot.model_validate({**item, "start_s": at / fps,
                                              "end_s": (at + frames) / fps}))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise invalid(f"timeline: clip {clip!r} ({item['id']}).{where}: {error['msg']}",
                          reason="TIMELINE_FIELD_INVALID") from None
        at += frames
    plan = previous.model_copy(update={"shots": built, "duration_s": at / fps,
                                       "planner": "edit", "notes": []})
    problems = plan_problems(plan, characters)
    if problems:
        raise invalid("the edited timeline breaks the plan's rules: " + "; ".join(problems[:5]),
                      reason="TIMELINE_PLAN_INVALID")
    return plan
