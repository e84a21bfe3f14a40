"""The LLM's shot ideas laid on the rules' grid: a plan that says where each field came from.

Every field the LLM gave a usable value for is taken from it; every other field is the
heuristic planner's for that shot (the grid *is* the heuristic plan). `Shot.sources` names,
per field, "llm", "rules", or "llm+rules" (an LLM value the rules completed, e.g. the image
prompt composed from the LLM's description and the brief's style, place and looks).

`repair_ideas` is the last step before a plan is accepted: for each problem the quality gate
found that the LLM did not fix when re-asked, it puts the rules' value back, shot by shot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.exchange import ShotIdea
from kantoku.planner.planning.heuristic import default_voice, describe_shot, written_in_japanese
from kantoku.planner.planning.plan import Dialogue, Plan, Shot

LLM, RULES, BOTH = "llm", "rules", "llm+rules"


@dataclass
class Problem:
    """One thing the quality gate found, with the grid shot and field it is about."""

    check: str
    message: str
    shot: int | None = None
    field: str | None = None
    #: The character or line the problem is about (a repair needs it).
    name: str | None = None
    line: int | None = None


@dataclass
class Composed:
    """A plan, and for each of its shots the grid shots (indices) it covers."""

    plan: Plan
    cover: list[list[int]]
    #: The ideas the plan was composed from, one per grid shot.
    ideas: list[ShotIdea] = field(default_factory=list)
    #: Dialogue line index → grid shot index, for lines the LLM placed where they may go.
    placed: dict[int, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def shot_of(self, grid_index: int) -> int:
        return next(i for i, span in enumerate(self.cover) if grid_index in span)


def compose_prompt(brief: Brief, shot: Shot) -> str:
    """A self-contained text-to-image prompt: style, framing, what it shows, place, looks."""
    looks = [f"{c.name}, {c.description}" if c.description else c.name
             for c in brief.characters if c.name in shot.characters]
    parts = [brief.style, f"{shot.shot_size.replace('_', ' ')} shot", shot.description,
             shot.location, *looks, shot.time_of_day.replace("_", " "), brief.mood]
    return ", ".join(p for p in parts if p)[:2000]


def min_shots(grid: Plan, longest_s: float) -> int:
    """Fewest shots the music (or running time) allows: half the grid's, and none too long."""
    return max(math.ceil(grid.duration_s / longest_s - 1e-6), math.ceil(len(grid.shots) / 2))


def compose(grid: Plan, ideas: list[ShotIdea], brief: Brief, *, longest_s: float,
            place_open_lines: bool = False) -> Composed:
    """The plan from `ideas` (one per grid shot) on `grid`.

    Args:
        longest_s: a held cut (``cut: false``) is refused when the joined shot would be longer,
            or would cross a section start.
        place_open_lines: place the dialogue lines the LLM did not place (or placed out of
            order or on a shot without the speaker) by the rules; without it they stay open
            for the quality gate to name.
    """
    shots = [_shot(grid.shots[i], ideas[i], brief) for i in range(len(grid.shots))]
    placed = _placed_lines(ideas, shots, brief)
    if place_open_lines:
        _place_by_rules(brief, shots, placed)
    for line_index, shot_index in sorted(placed.items()):
        line = brief.dialogue[line_index]
        shots[shot_index].dialogue.append(Dialogue(speaker=line.speaker, text=line.text,
                                                   voice=default_voice(brief, line.speaker)))
    notes: list[str] = []
    merged, cover = _hold_cuts(shots, ideas, grid, longest_s, notes)
    japanese = written_in_japanese(brief)
    for index, shot in enumerate(merged):
        shot.id = f"s{index + 1:03d}"
        if shot.sources["description"] == RULES:  # the rules describe the shot as it is now
            shot.description = describe_shot(shot.shot_size, shot.characters, shot.location,
                                             japanese)
        shot.image_prompt = compose_prompt(brief, shot)
        shot.sources["image_prompt"] = BOTH if shot.sources.get("description") == LLM else RULES
    plan = grid.model_copy(update={"shots": merged, "planner": "llm"})
    return Composed(plan, cover, ideas, placed, notes)


def _shot(base: Shot, idea: ShotIdea, brief: Brief) -> Shot:
    sources: dict[str, str] = {}

    def pick(name: str, value: object) -> object:
        sources[name] = RULES if value is None else BOTH if name in idea.repaired else LLM
        return value if value is not None else getattr(base, name)

    shot = base.model_copy(deep=True)
    shot.characters = list(pick("characters", idea.who))  # type: ignore[call-overload]
    shot.shot_size = pick("shot_size", idea.size)  # type: ignore[assignment]
    shot.camera_move = pick("camera_move", idea.move)  # type: ignore[assignment]
    shot.location = pick("location", idea.place if len(brief.locations) > 1 else None
                         )  # type: ignore[assignment]
    shot.description = pick("description", idea.show)  # type: ignore[assignment]
    shot.dialogue = []
    sources["dialogue"] = LLM if idea.lines is not None else RULES
    sources.update(camera_angle=RULES, time_of_day=RULES, end_s=RULES)
    shot.sources = sources
    return shot


def _placed_lines(ideas: list[ShotIdea], shots: list[Shot], brief: Brief) -> dict[int, int]:
    """The LLM's placements that keep the lines in order, once each, on a speaker's shot."""
    claimed: dict[int, int] = {}
    for index, idea in enumerate(ideas):
        for line in idea.lines or []:
            claimed.setdefault(line, index)
    placed: dict[int, int] = {}
    floor = 0
    for line_index in range(len(brief.dialogue)):
        where = claimed.get(line_index)
        speaker = brief.dialogue[line_index].speaker
        if where is not None and where >= floor and speaker in shots[where].characters:
            placed[line_index] = floor = where
    return placed


def _place_by_rules(brief: Brief, shots: list[Shot], placed: dict[int, int]) -> None:
    """Each open line on the first shot after the line before it that shows its speaker (or
    the next shot, with the speaker added); the heuristic planner's rule."""
    floor = 0
    for line_index, line in enumerate(brief.dialogue):
        if line_index in placed:
            floor = placed[line_index]
            continue
        later = [placed[i] for i in placed if i > line_index]
        ceiling = min(later) if later else len(shots) - 1
        span = range(floor, ceiling + 1) if floor <= ceiling else range(floor, floor + 1)
        where = next((i for i in span if line.speaker in shots[i].characters), span[0])
        shot = shots[where]
        if line.speaker not in shot.characters:
            shot.characters.append(line.speaker)
            shot.sources["characters"] = BOTH if shot.sources["characters"] == LLM else RULES
        shot.sources["dialogue"] = BOTH if shot.sources["dialogue"] == LLM else RULES
        placed[line_index] = floor = where


def _hold_cuts(shots: list[Shot], ideas: list[ShotIdea], grid: Plan, longest_s: float,
               notes: list[str]) -> tuple[list[Shot], list[list[int]]]:
    merged: list[Shot] = []
    cover: list[list[int]] = []
    for index, shot in enumerate(shots):
        previous = ideas[index - 1] if index else None
        if merged and previous is not None and previous.cut is False:
            last = merged[-1]
            if shot.section != last.section:
                notes.append(f"{grid.shots[index - 1].id}: the cut into section {shot.section} "
                             "is kept (a section starts there)")
            elif shot.end_s - last.start_s > longest_s + 1e-6:
                notes.append(f"{grid.shots[index - 1].id}: the cut is kept (holding would make "
                             f"a {shot.end_s - last.start_s:.1f} s shot; at most "
                             f"{longest_s:g} s)")
            else:
                last.end_s = shot.end_s
                last.dialogue.extend(shot.dialogue)
                last.lyrics.extend(t for t in shot.lyrics if t not in last.lyrics)
                # The held shot shows whoever either shot showed.
                last.characters.extend(n for n in shot.characters if n not in last.characters)
                last.sources["end_s"] = LLM
                cover[-1].append(index)
                continue
        merged.append(shot)
        cover.append([index])
    return merged, cover


def repair_ideas(ideas: list[ShotIdea], grid: Plan, brief: Brief, problems: list[Problem]
                 ) -> list[str]:
    """Put the rules' value back wherever the gate still finds a problem; returns one note per
    repair. Dialogue left open is placed by `compose(..., place_open_lines=True)`."""
    notes = []
    for problem in problems:
        if problem.shot is None:
            continue
        idea, shot = ideas[problem.shot], grid.shots[problem.shot]
        if problem.field == "description" and idea.show is not None:
            idea.show = None
            notes.append(f"{shot.id}: description from the rules ({problem.message})")
        elif problem.field == "screen_time" and problem.name:
            for each, rules in zip(ideas, grid.shots, strict=True):
                if problem.name in rules.characters and problem.name not in (each.who or []):
                    each.who = None
            notes.append(f"{problem.name}: who from the rules where the rules show "
                         f"{problem.name} ({problem.message})")
            continue
        elif problem.field == "places":
            used = {each.place for each in ideas if each.place}
            for each, rules in zip(ideas, grid.shots, strict=True):
                if each.place is not None and rules.location not in used:
                    each.place = None
            notes.append(f"places from the rules ({problem.message})")
            continue
        elif problem.field == "characters" and problem.check == "framing":
            idea.who = None
            notes.append(f"{shot.id}: who from the rules ({problem.message})")
        elif problem.field == "characters" and problem.name:
            idea.who = [*(idea.who or []), problem.name]
            idea.repaired.add("characters")
            if idea.size == "extreme_wide":
                idea.size = None
            notes.append(f"{shot.id}: {problem.name} added ({problem.message})")
        elif problem.field == "shot_size":
            idea.size = idea.move = None
            notes.append(f"{shot.id}: size and move from the rules ({problem.message})")
        elif problem.field == "end_s":
            idea.cut = None
            notes.append(f"{shot.id}: cut kept ({problem.message})")
    return notes
