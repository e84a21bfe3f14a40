"""The heuristic planner: a deterministic shot grammar, used without an LLM and as its fallback.

- an establishing (extreme) wide shot at the start of every section;
- then a progression of tighter shot sizes, with camera moves that suit each size;
- characters alternated from shot to shot, dialogue lines placed in order on their speaker's shots;
- prompts composed from the brief (style, logline, location, characters, mood).
Same brief and duration → the same plan.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import MAX_SHOTS, MIN_SHOT_S, Dialogue, Plan, Shot

#: Shot length the grammar aims for when nothing (beats, lyrics) says otherwise.
TARGET_SHOT_S = 3.0
PROGRESSION = ("full", "medium", "medium_close_up", "close_up", "medium", "wide")
MOVES_BY_SIZE = {
    "extreme_wide": ("pan_right", "truck_left", "tilt_down"),
    "wide": ("truck_right", "pan_left", "dolly_in"),
    "full": ("dolly_in", "truck_left", "static"),
    "medium": ("truck_right", "dolly_in", "static"),
    "medium_close_up": ("dolly_in", "zoom_in", "static"),
    "close_up": ("zoom_in", "static", "dolly_out"),
}
DEFAULT_VOICES = {"en": "en_US-joe-medium", "ja": "jf_alpha"}
TIME_WORDS = {"dawn": "dawn", "sunrise": "dawn", "sunset": "golden_hour", "golden": "golden_hour",
              "dusk": "dusk", "evening": "dusk", "night": "night", "midnight": "night",
              "夜": "night", "夕": "dusk", "朝": "dawn"}


#: Shot sizes as Japanese storyboards name them.
SIZES_JA = {"extreme_wide": "超ロングショット", "wide": "ロングショット", "full": "フルショット",
            "medium": "ミディアムショット", "medium_close_up": "バストショット",
            "close_up": "クローズアップ", "extreme_close_up": "超クローズアップ"}
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Section:
    label: str
    start_s: float


def default_voice(brief: Brief, speaker: str) -> str:
    """The speaker's own voice, else the brief's default, else one for the brief's language."""
    voice = brief.character(speaker).voice if speaker else None
    return voice or brief.models.tts or DEFAULT_VOICES.get(brief.language[:2], "en_US-joe-medium")


def time_of_day(brief: Brief) -> str:
    text = f"{brief.logline} {brief.mood} {brief.style}".lower()
    return next((value for word, value in TIME_WORDS.items() if word in text), "day")


def default_sections(duration_s: float) -> list[Section]:
    """Opening, middle and ending by running time, for briefs without music."""
    if duration_s < 12:
        return [Section("main", 0.0)]
    return [Section("opening", 0.0), Section("middle", duration_s * 0.2),
            Section("ending", duration_s * 0.8)]


def even_cuts(start_s: float, end_s: float, target_s: float = TARGET_SHOT_S) -> list[float]:
    """Cut times inside (start, end) that split it into near-equal shots of about target_s."""
    count = max(1, round((end_s - start_s) / target_s))
    step = (end_s - start_s) / count
    return [start_s + step * i for i in range(1, count)]


def snap_boundaries(times: Sequence[float], duration_s: float, fps: int) -> list[float]:
    """Frame-grid boundaries from 0 to duration, dropping those that make a too-short shot.

    Shots are at least MIN_SHOT_S long, and long enough that the plan stays within MAX_SHOTS.
    """
    min_gap = max(MIN_SHOT_S, duration_s / MAX_SHOTS)
    grid = sorted({round(t * fps) / fps for t in times if 0 < t < duration_s})
    bounds = [0.0]
    for t in grid:
        if t - bounds[-1] >= min_gap and duration_s - t >= min_gap:
            bounds.append(t)
    bounds.append(round(duration_s * fps) / fps)
    return bounds


def shot_seed(brief: Brief, index: int) -> int:
    digest = hashlib.sha256(f"{brief.title}|{brief.seed}|{index}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def heuristic_plan(brief: Brief, duration_s: float, *, sections: Sequence[Section] | None = None,
                   cut_times: Sequence[float] | None = None, notes: Sequence[str] = ()) -> Plan:
    """A full plan for `duration_s` seconds.

    Args:
        brief: the validated brief.
        duration_s: running time (the song's, or the brief's duration_s).
        sections: labelled section starts (from song analysis); default opening/middle/ending.
        cut_times: candidate cut times (e.g. beats); default even ~3 s shots per section.
        notes: notes to carry into the plan (warnings from earlier stages).
    """
    sections = list(sections or default_sections(duration_s))
    starts = [s.start_s for s in sections[1:]]
    if cut_times is None:
        edges = [s.start_s for s in sections] + [duration_s]
        target = max(TARGET_SHOT_S, duration_s / MAX_SHOTS * 1.5)
        cut_times = [t for a, b in zip(edges, edges[1:], strict=False)
                     for t in even_cuts(a, b, target)]
    bounds = snap_boundaries([*starts, *cut_times], duration_s, brief.fps)
    width, height = brief.size
    shots = _shots(brief, bounds, sections)
    _place_dialogue(brief, shots)
    return Plan(title=brief.title, duration_s=bounds[-1], width_px=width, height_px=height,
                fps=brief.fps, planner="heuristic", shots=shots, notes=list(notes))


def _shots(brief: Brief, bounds: list[float], sections: list[Section]) -> list[Shot]:
    names = [c.name for c in brief.characters]
    locations = brief.locations or ["city street"]
    japanese = written_in_japanese(brief)
    daylight = time_of_day(brief)
    shots: list[Shot] = []
    used: Counter[str] = Counter()
    beat_in_section = 0
    current = None
    for index, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        section_index = max(i for i, s in enumerate(sections) if s.start_s <= start + 1e-6)
        section = sections[section_index]
        if section is not current:
            current, beat_in_section = section, 0
        size = ("extreme_wide" if index == 0 else "wide") if beat_in_section == 0 else \
            PROGRESSION[(beat_in_section - 1) % len(PROGRESSION)]
        # Each size cycles through its own moves, so the camera varies from shot to shot.
        moves = MOVES_BY_SIZE[size]
        move = moves[used[size] % len(moves)]
        used[size] += 1
        cast = [] if size == "extreme_wide" or not names else \
            ([names[index % len(names)]] if size in ("medium_close_up", "close_up") or
             len(names) == 1 else names[:2] if beat_in_section % 3 == 1 else
             [names[index % len(names)]])
        location = locations[section_index % len(locations)]
        angle = "low" if size == "close_up" and index % 4 == 0 else \
            "high" if size == "extreme_wide" else "eye_level"
        shots.append(Shot(
            id=f"s{index + 1:03d}", start_s=start, end_s=end, section=section.label,
            description=describe_shot(size, cast, location, japanese),
            shot_size=size,  # type: ignore[arg-type]
            camera_angle=angle, camera_move=move,  # type: ignore[arg-type]
            characters=cast, location=location, time_of_day=daylight,  # type: ignore[arg-type]
            image_prompt=_prompt(brief, size, cast, location, daylight),
            seed=shot_seed(brief, index)))
        beat_in_section += 1
    return shots


def describe_shot(size: str, cast: list[str], location: str, japanese: bool = False) -> str:
    """The rules' description: size, who (or the place) and where; in Japanese for briefs
    written in Japanese."""
    if japanese:
        who = "と".join(cast)
        return f"{location}、{who + 'の' if who else ''}{SIZES_JA.get(size, size)}"
    who = " and ".join(cast) if cast else "the place"
    return f"{size.replace('_', ' ')} of {who} at the {location}"


def written_in_japanese(brief: Brief) -> bool:
    """Whether the brief's own words (title, story, places) are Japanese."""
    text = " ".join([brief.title, brief.logline, *brief.locations])
    return bool(_KANA.search(text)) or (bool(_HAN.search(text)) and brief.language[:2] == "ja")


def _prompt(brief: Brief, size: str, cast: list[str], location: str, daylight: str) -> str:
    looks = [f"{c.name}, {c.description}" if c.description else c.name
             for c in brief.characters if c.name in cast]
    parts = [brief.style, f"{size.replace('_', ' ')} shot", location, *looks,
             daylight.replace("_", " "), brief.mood, brief.logline]
    return ", ".join(p for p in parts if p)[:2000]


def _place_dialogue(brief: Brief, shots: list[Shot]) -> None:
    """Each line goes on the next shot (in order) that shows its speaker, or the next shot."""
    cursor = 0
    for line in brief.dialogue:
        if cursor >= len(shots):
            break
        index = next((i for i in range(cursor, len(shots)) if line.speaker in
                      shots[i].characters), cursor)
        shots[index].dialogue.append(Dialogue(speaker=line.speaker, text=line.text,
                                              voice=default_voice(brief, line.speaker)))
        cursor = index + 1
