"""The quality gate a plan passes before it is accepted, and the score benchmarks compare.

Checks, each naming the shot and field at fault:

- ``renderable``: contiguous shots on the frame grid (`plan_problems`);
- ``characters``: every character of the brief appears (as far as the shots allow), and
  none has less than half an even share of the screen time with people (or less than the
  rules gave);
- ``places``: the plan goes to as many of the brief's locations as the rules' plan does;
- ``dialogue``: every dialogue line placed once, in order, on a shot that shows its speaker;
- ``density``: the cut density within the music's (or running time's) range;
- ``sections``: no section without a shot;
- ``framing``: no two shots in a row with the LLM's same size and camera move, and no medium
  or closer shot of nobody (the LLM left `who` empty);
- ``descriptions``: each LLM description says something about this brief (a word of it),
  names who is in the shot, and is not another shot's;
- ``language``: the LLM wrote in the language the brief is written in;
- ``prompts``: every image prompt names the style, the place and who is in the shot.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.compose import LLM, Composed, Problem, min_shots
from kantoku.planner.planning.exchange import CJK, brief_text, writes_cjk
from kantoku.planner.planning.plan import Plan, Shot, plan_problems

CHECKS = ("renderable", "characters", "places", "dialogue", "density", "sections", "framing",
          "descriptions", "language", "prompts")
_WORD = re.compile(r"[^\W\d_]{2,}")
#: Sizes close enough that a shot of the place alone makes no sense in a brief with people.
CLOSE_SIZES = ("medium", "medium_close_up", "close_up", "extreme_close_up")
#: Words are compared by their first letters, so "rooftops" is a word of "rooftop".
_STEM = 5
_JUNK = re.compile(r"[{}\[\]<>]|https?:|\.com\b|\\u", re.IGNORECASE)


@dataclass
class CheckResult:
    name: str
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok,
                "problems": [p.message for p in self.problems[:20]],
                "count": len(self.problems)}


def run_gate(composed: Composed, brief: Brief, grid: Plan, *, longest_s: float,
             instruction_text: str = "") -> list[CheckResult]:
    """Every check on `composed` (the LLM's plan on the grid), in the order of CHECKS.

    Args:
        instruction_text: what the LLM was told; a description that copies four words in a
            row of it is not a description.
    """
    plan = composed.plan
    found: dict[str, list[Problem]] = {name: [] for name in CHECKS}
    found["renderable"] = [Problem("renderable", p) for p in
                           plan_problems(plan, {c.name for c in brief.characters})]
    shown = {name for shot in plan.shots for name in shot.characters}
    for character in brief.characters:
        if character.name not in shown and len(plan.shots) >= len(brief.characters):
            home = _grid_shot_with(grid, character.name)
            found["characters"].append(Problem(
                "characters", f"{character.name} appears in no shot; show {character.name}",
                shot=home, field="characters", name=character.name))
    found["characters"] += _screen_time(plan, grid, brief)
    grid_places = {s.location for s in grid.shots}
    places = {s.location for s in plan.shots}
    if len(places) < len(grid_places):
        missing = sorted(grid_places - places)
        found["places"].append(Problem(
            "places", f"the plan stays in {len(places)} of the brief's places; go to "
            f"{', '.join(missing)} too", shot=next(i for i, s in enumerate(grid.shots)
                                                   if s.location == missing[0]),
            field="places"))
    for index, line in enumerate(brief.dialogue):
        if index not in composed.placed:
            after = f", after line {index}" if index else ""
            found["dialogue"].append(Problem(
                "dialogue", f"dialogue line {index + 1} ({line.speaker}: {line.text[:40]!r}) is "
                f"not placed on a shot that shows {line.speaker}{after}",
                shot=_grid_shot_saying(grid, line.text), field="dialogue", line=index,
                name=line.speaker))
    fewest = min_shots(grid, longest_s)
    if len(plan.shots) < fewest:
        held = [span[0] for span in composed.cover if len(span) > 1]
        found["density"] = [Problem(
            "density", f"{len(plan.shots)} shots is too few for {grid.duration_s:.1f} s of "
            f"this music; keep at least {fewest} (cut: true more often)", shot=i, field="end_s")
            for i in held]
    for shot in plan.shots:
        if shot.duration_s > longest_s + 1e-3:
            found["density"].append(Problem(
                "density", f"{shot.id} lasts {shot.duration_s:.1f} s; at most {longest_s:g} s"))
    sections = dict.fromkeys(s.section for s in grid.shots)
    present = {s.section for s in plan.shots}
    found["sections"] = [Problem("sections", f"section {label} has no shot")
                         for label in sections if label not in present]
    for (before, shot), span in zip(zip(plan.shots, plan.shots[1:], strict=False),
                                    composed.cover[1:], strict=False):
        if LLM in (shot.sources.get("shot_size"), shot.sources.get("camera_move")) and \
                (before.shot_size, before.camera_move) == (shot.shot_size, shot.camera_move):
            found["framing"].append(Problem(
                "framing", f"{shot.id} repeats the size and move of {before.id} "
                f"({shot.shot_size}, {shot.camera_move}); vary them", shot=span[0],
                field="shot_size"))
    for shot, span in zip(plan.shots, composed.cover, strict=True):
        if shot.sources.get("characters") == LLM and not shot.characters and \
                brief.characters and shot.shot_size in CLOSE_SIZES:
            found["framing"].append(Problem(
                "framing", f"{shot.id} is a {shot.shot_size.replace('_', ' ')} of nobody; a "
                "shot this close shows one of the characters", shot=span[0], field="characters"))
    cjk = writes_cjk(brief_text(brief))
    vocabulary = brief_words(brief)
    instructions = word_runs(instruction_text)
    seen: dict[str, tuple[int, str]] = {}
    for shot, span in zip(plan.shots, composed.cover, strict=True):
        if shot.sources.get("description") != LLM:
            continue
        where = span[0]
        idea = composed.ideas[where] if composed.ideas else None
        # A section's description names the section's people; each shot shows some of them.
        scene = idea.scene if idea is not None and idea.scene is not None else None
        named = idea.scene_who if scene is not None and idea and idea.scene_who is not None \
            else shot.characters
        why = describe_problem(shot.description, named, vocabulary, instructions)
        origin = scene if scene is not None else where
        first, first_id = seen.setdefault(shot.description.casefold(), (origin, shot.id))
        if why is None and first != origin:
            why = f"repeats the description of {first_id}; say what is new in this shot"
        if why:
            found["descriptions"].append(Problem(
                "descriptions", f"{shot.id}: show {shot.description!r} {why}", shot=where,
                field="description"))
        elif writes_cjk(shot.description) != cjk:
            found["language"].append(Problem(
                "language", f"{shot.id}: show {shot.description!r} is not in the language of "
                "the brief", shot=where, field="description"))
    for shot in plan.shots:
        missing = prompt_gaps(shot.image_prompt, brief, shot.location, shot.characters)
        if missing:
            found["prompts"].append(Problem(
                "prompts", f"{shot.id}: the image prompt does not name {', '.join(missing)}"))
    return [CheckResult(name, found[name]) for name in CHECKS]


def brief_words(brief: Brief) -> set[str]:
    """What a description of a shot may be about: the title, the story, the places and the
    characters' names (their words' first five letters, and CJK character pairs)."""
    text = " ".join([brief.title, brief.logline, *brief.locations,
                     *(c.name for c in brief.characters)])
    words = {w.casefold()[:_STEM] for w in _WORD.findall(text) if len(w) >= 4}
    return words | _cjk_pairs(text)


def _cjk_pairs(text: str) -> set[str]:
    return {a + b for a, b in zip(text, text[1:], strict=False) if CJK.match(a) and CJK.match(b)}


def word_runs(text: str, length: int = 4) -> set[tuple[str, ...]]:
    """Every run of `length` words in `text` (case folded)."""
    words = [w.casefold() for w in _WORD.findall(text)]
    return {tuple(words[i:i + length]) for i in range(len(words) - length + 1)}


def _screen_time(plan: Plan, grid: Plan, brief: Brief) -> list[Problem]:
    """Characters with too small a share of the shots with people in them."""
    def shares(shots: Sequence[Shot]) -> dict[str, float]:
        """Each character's share of the running time with people on screen."""
        peopled = [s for s in shots if s.characters]
        total = sum(s.duration_s for s in peopled) or 1.0
        return {c.name: sum(s.duration_s for s in peopled if c.name in s.characters) / total
                for c in brief.characters}

    if len(brief.characters) < 2:
        return []
    fair = 1 / (2 * len(brief.characters))
    ours, rules = shares(plan.shots), shares(grid.shots)
    return [Problem("characters", f"{name} is on screen {ours[name]:.0%} of the time people "
                    "are; "
                    f"give {name} at least {min(fair, rules[name]):.0%}",
                    shot=next((i for i, s in enumerate(grid.shots) if name in s.characters), 0),
                    field="screen_time", name=name)
            for name in ours if 0 < ours[name] < min(fair, rules[name]) - 1e-9]


def describe_problem(text: str, cast: Sequence[str], vocabulary: set[str],
                     instructions: Collection[tuple[str, ...]] = ()) -> str | None:
    """Why `text` does not describe a shot showing `cast` in a brief with words `vocabulary`
    (told `instructions`, as word runs); None when it does."""
    if _JUNK.search(text) or re.search(r"\w\.(jpe?g|png|gif)\b|_\w*\d", text):
        return "is not a description (code, a file name or a link)"
    if word_runs(text) & set(instructions):
        return "copies the instructions instead of describing the shot"
    if writes_cjk(text):
        if len(CJK.findall(text)) < 4:
            return "is too short to say what the shot shows"
    elif len(_WORD.findall(text)) < 3:
        return "is too short to say what the shot shows"
    folded = text.casefold()
    if cast and not any(name.casefold() in folded for name in cast):
        return f"does not name who is in the shot ({', '.join(cast)})"
    own = {w.casefold()[:_STEM] for w in _WORD.findall(text) if len(w) >= 4} | _cjk_pairs(text)
    if not own & vocabulary:
        return "says nothing of the story (no person, place or thing of it)"
    return None


def prompt_gaps(prompt: str, brief: Brief, location: str, cast: Sequence[str]) -> list[str]:
    """What an image prompt lacks of: the style, the place, each character in the shot."""
    folded = prompt.casefold()
    wanted = ([("the style", brief.style)] if brief.style else []) + \
        ([("the place", location)] if location else []) + [(name, name) for name in cast]
    return [label for label, text in wanted if text.casefold() not in folded]


def _grid_shot_with(grid: Plan, name: str) -> int:
    """The first grid shot (not an establishing one) the rules put `name` in."""
    return next((i for i, s in enumerate(grid.shots) if name in s.characters),
                min(1, len(grid.shots) - 1))


def _grid_shot_saying(grid: Plan, text: str) -> int:
    """The grid shot the rules put a dialogue line on (the first shot when none)."""
    return next((i for i, s in enumerate(grid.shots) if any(d.text == text for d in s.dialogue)),
                0)


def failed(results: Sequence[CheckResult]) -> list[Problem]:
    return [p for r in results for p in r.problems]


# --- the score ------------------------------------------------------------------------------


@dataclass
class PlanScore:
    """Fractions from 0 to 1 of what a director checks first; `total` is their mean."""

    characters: float
    dialogue: float
    cuts_on_beats: float | None
    prompts: float

    @property
    def total(self) -> float:
        parts = [self.characters, self.dialogue, self.prompts]
        if self.cuts_on_beats is not None:
            parts.append(self.cuts_on_beats)
        return sum(parts) / len(parts)


def score_plan(plan: Plan, brief: Brief, beats_s: Sequence[float] | None = None) -> PlanScore:
    """How much of the brief a plan carries: characters shown, dialogue lines placed on their
    speaker's shot in order, cuts within a frame of a beat, prompts naming style, place, cast."""
    shown = {name for shot in plan.shots for name in shot.characters}
    characters = sum(c.name in shown for c in brief.characters) / len(brief.characters) \
        if brief.characters else 1.0
    placed, floor = 0, 0
    for line in brief.dialogue:
        where = next((i for i in range(floor, len(plan.shots))
                      if any(d.text == line.text for d in plan.shots[i].dialogue)), None)
        if where is not None and line.speaker in plan.shots[where].characters:
            placed, floor = placed + 1, where
    dialogue = placed / len(brief.dialogue) if brief.dialogue else 1.0
    beats = None
    if beats_s:
        cuts = [s.start_s for s in plan.shots[1:]]
        tolerance = 1.0 / plan.fps + 1e-6
        beats = sum(any(abs(c - b) <= tolerance for b in beats_s) for c in cuts) / len(cuts) \
            if cuts else 1.0
    prompts = sum(not prompt_gaps(s.image_prompt, brief, s.location, s.characters)
                  for s in plan.shots) / len(plan.shots)
    return PlanScore(round(characters, 3), round(dialogue, 3),
                     None if beats is None else round(beats, 3), round(prompts, 3))
