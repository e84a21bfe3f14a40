"""The job's graph state: JSON-ready values only, so every checkpointer can store it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Reducer for results that arrive from parallel shot renders."""
    return {**left, **right}


class JobState(TypedDict, total=False):
    job_id: str
    out_dir: str
    brief: dict[str, Any]
    #: Song file (music videos); None when the brief gives duration_s.
    song: str | None
    lyrics: str | None
    #: "heuristic" or "llm".
    planner: str
    #: Integrated loudness the video's soundtrack is normalised to (LUFS; default -14).
    loudness_lufs: float
    #: "burn" (lyrics drawn into the picture, the default) or "soft" (a subtitle track).
    lyrics_mode: str
    auto_approve: bool
    duration_s: float
    #: Song analysis (tempo, beats, sections, lyric lines), when there is a song.
    song_analysis: dict[str, Any]
    plan: dict[str, Any]
    #: An edited plan to render instead of planning: {"plan", "parent_job", "diff", ...}.
    edit: dict[str, Any]
    policy: dict[str, Any]
    #: shot id -> that shot's assets and step ids.
    shots: Annotated[dict[str, dict[str, Any]], merge_dicts]
    #: The assembled (unsigned) video in the asset store, with its report.
    assembly: dict[str, Any]
    #: Signed files in the output folder.
    signed: dict[str, Any]
    report: dict[str, Any]
    notes: Annotated[list[str], operator.add]


class ShotTask(TypedDict):
    """What one parallel render task receives (LangGraph `Send`)."""

    shot: dict[str, Any]
    plan: dict[str, Any]
    brief: dict[str, Any]
