"""The music-video steps of a job: analyse the song, read the lyrics, cut on the beat.

The song decides the running time (a brief's `duration_s` that disagrees gets a warning). The
analysis and the lyric lines go into the graph state, so a resumed job does not analyse again.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from kantoku.planner.context import JobContext
from kantoku.planner.music.lyrics import LyricLine, load_lyrics
from kantoku.planner.music.song import (
    SongAnalysis,
    analyze_song,
    choose_cuts,
    sections_for_plan,
    snap_to_beats,
)
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.heuristic import Section
from kantoku.planner.planning.plan import Plan
from kantoku.services._core.assets import sha256_file

#: A brief's duration_s within this of the song's counts as agreeing.
DURATION_TOLERANCE_S = 0.5
#: Shot lengths the beat-synced planner aims between.
MIN_SHOT_S, MAX_SHOT_S = 1.0, 8.0


async def read_song(song: Path, lyrics: Path | None, brief: Brief,
                    known: SongAnalysis | None = None) -> dict[str, Any]:
    """The song document the planners use: analysis, lyric lines and warnings.

    Args:
        known: an analysis of this song made before (an edit's parent job); used when its
            sha256 is the song's, instead of analysing again.
    """
    reuse = known is not None and known.sha256 == await asyncio.to_thread(sha256_file, song)
    analysis = known if reuse and known is not None else \
        await asyncio.to_thread(analyze_song, song)
    notes = []
    if brief.duration_s is not None and \
            abs(brief.duration_s - analysis.duration_s) > DURATION_TOLERANCE_S:
        notes.append(f"duration_s is {brief.duration_s:g} s but the song lasts "
                     f"{analysis.duration_s:.2f} s; the song wins")
    lines: list[LyricLine] = []
    if lyrics is not None:
        vocal = [(s.start_s, s.end_s) for s in analysis.loud_sections]
        lines, warnings = await asyncio.to_thread(
            load_lyrics, lyrics, duration_s=analysis.duration_s, vocal_sections=vocal)
        notes.extend(warnings)
    return {"analysis": analysis.model_dump(mode="json"),
            "lyrics": [asdict(line) for line in lines], "notes": notes}


async def intake_song(song: Path, lyrics: Path | None, brief: Brief, ctx: JobContext,
                      known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Analyse the song (or reuse `known`, an earlier song document of the same song) and
    place the lyrics; returns the state update for `intake`."""
    ctx.emit({"event": "stage", "stage": "analyse song"})
    document = await read_song(song, lyrics, brief, analysis_of(known or {}))
    analysis = analysis_of(document)
    assert analysis is not None
    rights = brief.song.model_dump() if brief.song else None
    ctx.ledger.append(ctx.job_id, "song", data={
        "file": song.name, "sha256": analysis.sha256, "duration_s": analysis.duration_s,
        "tempo_bpm": analysis.tempo_bpm, "beats": len(analysis.beats_s),
        "sections": [s.model_dump() for s in analysis.sections], "rights": rights,
        "lyrics": lyrics.name if lyrics else None, "lyric_lines": len(document["lyrics"]),
        "notes": document["notes"]})
    return {"duration_s": analysis.duration_s, "song_analysis": document}


def analysis_of(document: dict[str, Any]) -> SongAnalysis | None:
    return SongAnalysis.model_validate(document["analysis"]) if document.get("analysis") \
        else None


def lyric_lines(document: dict[str, Any]) -> list[LyricLine]:
    return [LyricLine(**line) for line in (document or {}).get("lyrics", [])]


def plan_guides(document: dict[str, Any]) -> tuple[list[Section] | None, list[float] | None]:
    """Sections and beat-synced cut candidates for the planners (None without a song).

    Cuts come from the song's beats (denser where the energy rises) plus each lyric line's
    start snapped to its nearest beat, so shots follow the lyric lines.
    """
    analysis = analysis_of(document)
    if analysis is None:
        return None, None
    cuts = choose_cuts(analysis, min_shot_s=MIN_SHOT_S, max_shot_s=MAX_SHOT_S)
    starts = [line.start_s for line in lyric_lines(document) if line.start_s > 0]
    cuts = sorted({*cuts, *snap_to_beats(starts, analysis)})
    return sections_for_plan(analysis), _thin(cuts, MIN_SHOT_S)


def _thin(times: list[float], min_gap: float) -> list[float]:
    kept: list[float] = []
    for t in times:
        if not kept or t - kept[-1] >= min_gap:
            kept.append(t)
    return kept


def llm_context(document: dict[str, Any]) -> dict[str, Any] | None:
    """What the LLM planner is told about the song (beats rounded, lyrics with times)."""
    analysis = analysis_of(document)
    if analysis is None:
        return None
    return {"song": {"tempo_bpm": round(analysis.tempo_bpm, 1),
                     "duration_s": analysis.duration_s,
                     "downbeats_s": [round(t, 2) for t in analysis.downbeats_s],
                     "sections": [s.model_dump() for s in analysis.sections]},
            "lyrics": [{"start_s": round(line.start_s, 2), "end_s": round(line.end_s, 2),
                        "text": line.text} for line in lyric_lines(document)],
            "rules": "cut on downbeats; every cut time will be snapped to the nearest beat"}


def beat_snapper(document: dict[str, Any]) -> Any:
    analysis = analysis_of(document)
    return None if analysis is None else (lambda times: snap_to_beats(times, analysis))


def with_lyrics(plan: Plan, document: dict[str, Any]) -> Plan:
    """Each shot lists the lyric lines sung while it is on screen."""
    lines = lyric_lines(document)
    for shot in plan.shots:
        shot.lyrics = [line.text for line in lines
                       if line.start_s < shot.end_s and line.end_s > shot.start_s]
    return plan
