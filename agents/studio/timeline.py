"""The timeline strip's data: the song's beats, downbeats, sections and lyric lines, and a
waveform of peaks, for the page to draw under the shots.

The waveform is computed once per song (its sha256 names it) and kept in the studio's folder;
every later request reads it from there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kantoku.planner.finish.timeline_picture import wave_envelope
from kantoku.planner.music.song import decode_mono
from kantoku.planner.music.steps import analysis_of, lyric_lines
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.files import write_text_atomic

#: One peak per this many seconds ...
SECONDS_PER_PEAK = 0.05
#: ... but never more peaks than this (a 10-minute song gets one per 0.15 s).
MAX_PEAKS = 4000


def waveform_peaks(song: Path, duration_s: float) -> dict[str, Any]:
    """Peaks of the song's mono mix: the largest |sample| per window, 1.0 = the song's peak."""
    mono, rate = decode_mono(song)
    count = max(1, min(MAX_PEAKS, round(duration_s / SECONDS_PER_PEAK)))
    lows, highs, _ = wave_envelope(mono, rate, duration_s, count)
    peaks = np.maximum(np.abs(lows), np.abs(highs))
    top = float(peaks.max(initial=0.0))
    if top > 0:
        peaks = peaks / top
    return {"peaks": [round(float(p), 3) for p in peaks],
            "seconds_per_peak": duration_s / count}


def cached_waveform(song: Path, sha256: str, duration_s: float, folder: Path
                    ) -> dict[str, Any] | None:
    """The song's waveform, from `folder` when it was computed before; None when the song
    cannot be read any more (it was moved or deleted)."""
    path = folder / f"{sha256}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        pass
    try:
        waveform = waveform_peaks(song, duration_s)
    except (KantokuError, OSError):
        return None
    write_text_atomic(path, json.dumps(waveform))
    return waveform


def timeline_document(state: dict[str, Any], plan: dict[str, Any] | None,
                      waveforms: Path) -> dict[str, Any]:
    """GET /v1/jobs/{id}/timeline for a job's graph state (and plan, when it has one).

    Without a song the lists are empty, the waveform is None and the running time is the
    plan's (else the brief's).
    """
    brief = state.get("brief", {})
    fps = int(plan["fps"] if plan else brief.get("fps", 30))
    document = state.get("song_analysis") or {}
    analysis = analysis_of(document)
    song = state.get("song")
    if analysis is None or not song:
        duration = plan["duration_s"] if plan else brief.get("duration_s") or 0.0
        return {"duration_s": float(duration), "fps": fps, "beats_s": [], "downbeats_s": [],
                "sections": [], "lyrics": [], "waveform": None}
    return {"duration_s": analysis.duration_s, "fps": fps, "beats_s": analysis.beats_s,
            "downbeats_s": analysis.downbeats_s,
            "sections": [{"name": s.label, "start_s": s.start_s, "end_s": s.end_s}
                         for s in analysis.sections],
            "lyrics": [{"start_s": line.start_s, "end_s": line.end_s, "text": line.text}
                       for line in lyric_lines(document)],
            "waveform": cached_waveform(Path(song), analysis.sha256, analysis.duration_s,
                                        waveforms)}
