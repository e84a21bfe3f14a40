"""What the LLM is asked and how its answer is read: shot ideas on a grid the rules have cut.

The cut grid (the shots' times, from the music's beats, bars, sections and lyric lines, or from
the running time) is the rules' job. The LLM's job is what rules do badly: for each shot of a
batch, who is in it, the framing and camera move, the place, where the dialogue falls, what the
shot shows, and whether to hold the shot through the next cut. A small model answers one batch
of shots at a time, against a schema with one object per shot; a big model gets every shot in
one batch (`KANTOKU_LLM_BATCH_SHOTS`).

Nothing here talks to an endpoint, and nothing here raises for anything the model wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import CAMERA_MOVES, SHOT_SIZES, Plan

#: How much the LLM is asked: every field of every shot, or (small models, "compact") who, the
#: place and what happens per section, the rules framing each shot of it.
Detail = Literal["full", "compact"]
#: Tokens one shot's answer takes, with room to spare (about 35 are typical).
TOKENS_PER_SHOT = 72
TOKENS_PER_ANSWER = 48
TOKENS_PER_SECTION = 56
#: Longest "show" sentence, in characters (compact: what a small model writes well, and fast).
SHOW_CHARS = {"full": 120, "compact": 64}

_SIZE_ALIASES = {"ecu": "extreme_close_up", "cu": "close_up", "mcu": "medium_close_up",
                 "ms": "medium", "mid": "medium", "ws": "wide", "ls": "wide", "long": "wide",
                 "fs": "full", "els": "extreme_wide", "ews": "extreme_wide",
                 "establishing": "extreme_wide", "close-up": "close_up"}
_LANGUAGE_NAMES = {"en": "English", "ja": "Japanese", "zh": "Chinese", "ko": "Korean",
                   "fr": "French", "de": "German", "es": "Spanish", "it": "Italian",
                   "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "pl": "Polish"}
#: Chinese, Japanese (kana and kanji) and Korean script.
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


@dataclass
class ShotIdea:
    """The LLM's choices for one shot of the grid; None where it gave nothing usable."""

    who: list[str] | None = None
    size: str | None = None
    move: str | None = None
    place: str | None = None
    #: Indices (from 0) into the brief's dialogue.
    lines: list[int] | None = None
    show: str | None = None
    #: False: hold this shot through the next cut (the two become one shot).
    cut: bool | None = None
    #: Fields the rules completed after the quality gate (e.g. a character added to `who`).
    repaired: set[str] = field(default_factory=set)
    #: Compact answers are per section: the grid index of the section's first shot, and who
    #: the section's answer named (this shot's `who` is the rules' pick among them).
    scene: int | None = None
    scene_who: list[str] | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in
                   ("who", "size", "move", "place", "lines", "show", "cut"))


@dataclass
class Batch:
    """What one call asks about: grid shots by index (consecutive, or the few a re-ask names),
    or (compact) sections, each the run of grid shots in `spans`."""

    indices: list[int]
    spans: list[list[int]] | None = None

    @property
    def size(self) -> int:
        return len(self.indices)

    @property
    def start(self) -> int:
        return self.indices[0]

    @property
    def shot_indices(self) -> list[int]:
        """Every grid shot the batch's answer decides."""
        return [i for span in self.spans for i in span] if self.spans is not None \
            else self.indices

    @property
    def unit(self) -> str:
        return "sections" if self.spans is not None else "shots"

    def label(self, total: int) -> str:
        if self.spans is not None:
            return f"{self.size} section{'s' * (self.size != 1)}"
        first, last = self.indices[0] + 1, self.indices[-1] + 1
        if self.indices == list(range(self.indices[0], self.indices[-1] + 1)):
            return f"shots {first}-{last} of {total}"
        return f"shots {', '.join(str(i + 1) for i in self.indices)} of {total}"

    def covering(self, shots: set[int]) -> Batch:
        """The part of this batch asking about any of `shots`."""
        if self.spans is None:
            return Batch(sorted(shots & set(self.indices)))
        kept = [span for span in self.spans if shots & set(span)]
        return Batch([span[0] for span in kept], kept)


def section_batch(grid: Plan) -> Batch:
    """One batch asking about every section (each run of shots with the same section label)."""
    spans: list[list[int]] = []
    for index, shot in enumerate(grid.shots):
        if spans and grid.shots[spans[-1][-1]].section == shot.section:
            spans[-1].append(index)
        else:
            spans.append([index])
    return Batch([span[0] for span in spans], spans)


def batches(grid: Plan, per_batch: int) -> list[Batch]:
    """Consecutive batches of at most `per_batch` shots, split at section starts when that
    keeps batches near full (a section is one scene for the model)."""
    shots, out, start = grid.shots, [], 0
    while start < len(shots):
        stop = min(start + per_batch, len(shots))
        if stop < len(shots):
            starts = [i for i in range(start + max(2, per_batch // 2), stop + 1)
                      if i < len(shots) and shots[i].section != shots[i - 1].section]
            stop = starts[-1] if starts else stop
        out.append(Batch(list(range(start, stop))))
        start = stop
    return out


# --- the brief's language ------------------------------------------------------------------


def writes_cjk(text: str) -> bool:
    """Whether `text` is written mostly in Chinese, Japanese or Korean script."""
    cjk, latin = len(CJK.findall(text)), len(_LATIN.findall(text))
    return cjk > 0 and cjk * 3 >= latin


def brief_text(brief: Brief) -> str:
    return " ".join([brief.title, brief.logline, brief.mood, brief.style, *brief.locations,
                     *(c.description for c in brief.characters)])


def written_language(brief: Brief) -> str:
    """The name of the language the brief is written in, for the model's instructions."""
    code = brief.language
    cjk_code = code[:2] in ("ja", "zh", "ko")
    if writes_cjk(brief_text(brief)) == cjk_code:
        return _LANGUAGE_NAMES.get(code[:2], "the language of the brief")
    return "Japanese" if writes_cjk(brief_text(brief)) else "English"


# --- the messages --------------------------------------------------------------------------


def asked_fields(brief: Brief, detail: Detail) -> list[str]:
    """The fields an answer has: per shot, all of them; per section (compact), who, place and
    what it shows."""
    full = detail == "full"
    fields = ["who"] + (["size", "move"] if full else [])
    fields += ["place"] if len(brief.locations) > 1 else []
    fields += ["lines"] if full and brief.dialogue else []
    return [*fields, "show"] + (["cut"] if full else [])


def shot_schema(brief: Brief, detail: Detail = "full") -> dict[str, Any]:
    """The JSON schema of one shot's answer, with the brief's names, places and lines."""
    names = [c.name for c in brief.characters]
    every: dict[str, Any] = {
        "who": {"type": "array", "items": {"type": "string", "enum": names},
                "maxItems": min(len(names), 4)} if names else {"type": "array", "maxItems": 0},
        "size": {"type": "string", "enum": list(SHOT_SIZES)},
        "move": {"type": "string", "enum": list(CAMERA_MOVES)},
        "place": {"type": "string", "enum": list(brief.locations)},
        "lines": {"type": "array", "maxItems": 3, "items": {
            "type": "integer", "enum": list(range(1, len(brief.dialogue) + 1))}},
        "show": {"type": "string", "minLength": 8, "maxLength": SHOW_CHARS[detail]},
        "cut": {"type": "boolean"},
    }
    fields = asked_fields(brief, detail)
    return {"type": "object", "additionalProperties": False, "required": fields,
            "properties": {name: every[name] for name in fields}}


def batch_schema(brief: Brief, count: int, detail: Detail = "full") -> dict[str, Any]:
    """``{"shots": [...]}`` (compact: ``{"sections": [...]}``) with exactly `count` answers."""
    key = "shots" if detail == "full" else "sections"
    return {"type": "object", "additionalProperties": False, "required": [key],
            "properties": {key: {"type": "array", "minItems": count, "maxItems": count,
                                 "items": shot_schema(brief, detail)}}}


def max_tokens_for(count: int, detail: Detail = "full") -> int:
    """Tokens to allow for `count` answers (shots, or compact sections), with room to spare."""
    per_item = TOKENS_PER_SHOT if detail == "full" else TOKENS_PER_SECTION
    return TOKENS_PER_ANSWER + per_item * count


def system_message(brief: Brief, grid: Plan, detail: Detail = "full") -> str:
    """The instructions and the brief: the same for every batch of a plan, so a server that
    keeps its prompt cache reads them once."""
    names = ", ".join(c.name for c in brief.characters)
    explained = {
        "who": f"who: the characters in frame, from: {names}; [] for a shot of the place alone"
               if names else "who: always []",
        "size": f"size: one of {', '.join(SHOT_SIZES)}",
        "move": f"move: one of {', '.join(CAMERA_MOVES)}",
        "place": "place: one of the locations, written as in the brief",
        "lines": "lines: the numbers of the dialogue lines spoken in this shot, [] if none; "
                 "each line once, in order, on a shot whose who has its speaker",
        "show": f"show: what we see, one sentence of at most {10 if detail == 'compact' else 16} "
                f"words naming who or what and the action, in {written_language(brief)}",
        "cut": "cut: true to cut to the next shot at its time; false to hold this shot through "
               "the next one"}
    fields = [explained[name] for name in asked_fields(brief, detail)]
    unit = "shot" if detail == "full" else "section"
    timed = "to the music" if any(s.lyrics for s in grid.shots) or \
        grid.shots[0].section not in ("main", "opening") else "already"
    lines = [
        f"You are the shot planner of kantoku, a director's assistant. The cuts are timed "
        f"{timed}; for each {unit} you are given, decide what it shows. Answer with JSON only: "
        f'{{"{unit}s": [one object per given {unit}, in order]}}.',
        f"Fields of a {unit}:", *(f"- {f}" for f in fields),
        ("Open each section wider, then go closer; vary sizes and moves; " if detail == "full"
         else "") + "Every character appears at least once; follow the story.",
        "", "The brief:", f"title: {brief.title}"]
    for label, value in (("story", brief.logline), ("style", brief.style),
                         ("mood", brief.mood)):
        if value:
            lines.append(f"{label}: {value}")
    if brief.locations:
        lines.append("locations: " + "; ".join(brief.locations))
    for character in brief.characters:
        looks = character.description or "(no description)"
        lines.append(f"character {character.name}: {looks}")
    for number, line in enumerate(brief.dialogue, 1):
        said = json.dumps(line.text, ensure_ascii=False)
        lines.append(f"dialogue line {number}, {line.speaker}: {said}")
    if brief.song and brief.song.title:
        lines.append(f"song: {brief.song.title}")
    return "\n".join(lines)


def batch_message(grid: Plan, batch: Batch, placed: Sequence[int], brief: Brief,
                  previous: str | None = None) -> str:
    """The shots (or sections) of `batch` with their times and lyrics, and the dialogue lines
    still open."""
    if batch.spans is not None:
        lines = [f"Plan these {batch.size} sections ({grid.duration_s:.1f} s in all)."]
        for span in batch.spans:
            first, last = grid.shots[span[0]], grid.shots[span[-1]]
            sung = [t for i in span for t in grid.shots[i].lyrics]
            line = (f"section {first.section or 'main'}: {first.start_s:.2f}-{last.end_s:.2f} s, "
                    f"{len(span)} shots")
            if sung:
                line += ", sung: " + " / ".join(json.dumps(t, ensure_ascii=False)
                                                for t in dict.fromkeys(sung))
            lines.append(line)
        lines.append(f'Answer {{"sections": [...]}} with exactly {batch.size} sections.')
        return "\n".join(lines)
    lines = [f"Plan {batch.label(len(grid.shots))} ({grid.duration_s:.1f} s in all)."]
    if previous:
        lines.append(f"The shot before shows: {previous}")
    for shot in (grid.shots[i] for i in batch.indices):
        line = f"{shot.id}: {shot.start_s:.2f}-{shot.end_s:.2f} s"
        if shot.section:
            line += f", section {shot.section}"
        if shot.lyrics:
            line += ", sung: " + " / ".join(json.dumps(t, ensure_ascii=False) for t in shot.lyrics)
        lines.append(line)
    if brief.dialogue:
        open_lines = [str(i + 1) for i in range(len(brief.dialogue)) if i not in placed]
        lines.append("Dialogue lines not placed yet: " + (", ".join(open_lines) or "none"))
    lines.append(f'Answer {{"shots": [...]}} with exactly {batch.size} shots.')
    return "\n".join(lines)


def reask_message(problems: Sequence[str], batch: Batch) -> str:
    """Appended to the batch's message: what was wrong with the first answer."""
    listed = "\n".join(f"- {p}" for p in problems[:12])
    return (f"A first answer had these problems; avoid them:\n{listed}\nAnswer with all "
            f"{batch.size} {batch.unit}, corrected.")


# --- reading the answer ----------------------------------------------------------------------


def extract_json(text: str) -> object | None:
    """The JSON in an answer: the whole text, a fenced block, or the first object in prose.
    Reasoning blocks (``<think>...</think>``) are skipped; None when there is no JSON."""
    text = _THINK.sub("", text).strip()
    decoder = json.JSONDecoder(strict=False)  # small models put raw line breaks in strings
    try:
        return decoder.decode(text)
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return decoder.decode(block.strip())
        except ValueError:
            continue
    position = text.find("{")
    while position != -1:
        try:
            value, _ = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            return value
        position = text.find("{", position + 1)
    return None


def read_answer(text: str, brief: Brief, batch: Batch, grid: Plan
                ) -> tuple[list[ShotIdea], list[str]]:
    """The ideas for each shot of `batch` (empty ideas where the answer had none; for a batch of
    sections, one per shot of each section) and the problems with the answer as a whole."""
    ideas = [ShotIdea() for _ in range(batch.size)]
    raw = extract_json(text)
    key = batch.unit
    found = raw.get(key, raw.get("shots")) if isinstance(raw, dict) else None
    if isinstance(found, list):
        items: list[object] = found
    elif isinstance(raw, list):
        items = raw
    else:
        return expand(ideas, batch, grid), [f'the answer is not a JSON object {{"{key}": [...]}}']
    problems = []
    if len(items) != batch.size:
        problems.append(f"the answer has {len(items)} {key}; give exactly {batch.size}, one per "
                        f"listed {key[:-1]}, in order")
    for offset, item in enumerate(items[:batch.size]):
        if isinstance(item, dict):
            ideas[offset] = read_idea(item, brief)
    return expand(ideas, batch, grid), problems


def expand(ideas: list[ShotIdea], batch: Batch, grid: Plan) -> list[ShotIdea]:
    """Per-shot ideas for `batch.indices` (sections: for every shot of each section, the
    section's place and description, and as cast the rules' pick among the section's people)."""
    if batch.spans is None:
        return ideas
    out: list[ShotIdea] = []
    for idea, span in zip(ideas, batch.spans, strict=True):
        for position, index in enumerate(span):
            shot = grid.shots[index]
            who = None
            if idea.who is not None:
                chosen = [n for n in shot.characters if n in idea.who]
                who = chosen or ([idea.who[position % len(idea.who)]]
                                 if shot.characters and idea.who else [])
            out.append(ShotIdea(who=who, place=idea.place, show=idea.show, scene=span[0],
                                scene_who=idea.who))
    return out


def read_idea(item: dict[str, Any], brief: Brief) -> ShotIdea:
    """One shot's answer, read leniently: aliases, case, strings for numbers."""
    names = {c.name.casefold(): c.name for c in brief.characters}
    places = {p.casefold(): p for p in brief.locations}
    idea = ShotIdea()
    who = item.get("who", item.get("characters"))
    if isinstance(who, str):
        who = [who]
    if isinstance(who, list):
        found = [names.get(n.strip().casefold()) for n in who if isinstance(n, str)]
        idea.who = list(dict.fromkeys(n for n in found if n))
    idea.size = _choice(item.get("size", item.get("shot_size")), SHOT_SIZES, _SIZE_ALIASES)
    idea.move = _choice(item.get("move", item.get("camera_move")), CAMERA_MOVES, {})
    place = item.get("place", item.get("location"))
    if isinstance(place, str):
        idea.place = places.get(place.strip().casefold())
    lines = item.get("lines")
    if isinstance(lines, int | str):
        lines = [lines]
    if isinstance(lines, list):
        numbers = [_int(n) for n in lines]
        idea.lines = sorted({n - 1 for n in numbers if n is not None
                             and 1 <= n <= len(brief.dialogue)})
    show = item.get("show", item.get("description"))
    if isinstance(show, str) and show.strip():
        idea.show = " ".join(show.split())[:SHOW_CHARS["full"]]
    if isinstance(item.get("cut"), bool):
        idea.cut = item["cut"]
    return idea


def _choice(value: object, allowed: tuple[str, ...], aliases: dict[str, str]) -> str | None:
    if not isinstance(value, str):
        return None
    key = value.strip().lower().replace(" ", "_").replace("-", "_")
    key = aliases.get(value.strip().lower(), key)
    return key if key in allowed else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
