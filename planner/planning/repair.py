"""Repair of an LLM's answer: the JSON found in it, made into a renderable `Plan`.

Whatever the model wrote (prose around the JSON, aliases such as "CU", times as strings, shots
out of order, overlapping, too short or too long), `repair_shots` keeps what is usable and notes
every change; `repair_answer` goes from the answer's text to (plan, repairs, problems). Nothing
here talks to an endpoint, and nothing here raises for anything the model wrote.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.heuristic import Section, default_voice, shot_seed, time_of_day
from kantoku.planner.planning.plan import (
    CAMERA_ANGLES,
    CAMERA_MOVES,
    MAX_SHOT_S,
    MAX_SHOTS,
    MIN_SHOT_S,
    SHOT_SIZES,
    TIMES_OF_DAY,
    Dialogue,
    Plan,
    Shot,
    Transition,
    plan_problems,
)

TRANSITIONS: tuple[str, ...] = get_args(Transition)
SnapTimes = Callable[[list[float]], list[float]]

#: Fewer than this share of the running time covered by the answer's shots is not a plan.
MIN_COVERAGE = 0.5
#: Items of an answer looked at; the rest is dropped unread.
_MAX_RAW_ITEMS = 4 * MAX_SHOTS
_MAX_NOTES = 50

_SIZE_ALIASES = {"ecu": "extreme_close_up", "cu": "close_up", "mcu": "medium_close_up",
                 "ms": "medium", "mid": "medium", "ws": "wide", "ls": "wide", "long": "wide",
                 "fs": "full", "els": "extreme_wide", "ews": "extreme_wide",
                 "establishing": "extreme_wide"}



# --- parsing ----------------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> object | None:
    """The JSON in an answer: the whole text, a fenced block, or the first object in prose.

    Reasoning blocks (``<think>...</think>``) are skipped. Among objects found in prose, the
    first with a ``shots`` key wins, else the first object. None when there is no JSON.
    """
    text = _THINK.sub("", text).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for block in _FENCE.findall(text):
        try:
            return json.loads(block.strip())
        except ValueError:
            continue
    return _first_object(text)


def _first_object(text: str) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    first: dict[str, Any] | None = None
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        if isinstance(value, dict):
            if "shots" in value:
                return value
            first = first if first is not None else value
        position = text.find("{", end)
    return first


# --- repair -----------------------------------------------------------------------------------


@dataclass
class _Draft:
    """One shot being repaired; times in seconds until they are put on the frame grid."""

    start_s: float
    end_s: float
    content: dict[str, Any]
    start_f: int = 0


def repair_shots(raw: object, brief: Brief, duration_s: float, fps: int,
                 snap_times: SnapTimes | None = None, *,
                 sections: Sequence[Section] | None = None,
                 ) -> tuple[Plan | None, list[str], list[str]]:
    """Turn an LLM's answer into a renderable plan, noting every repair.

    Shots that are not objects or have unusable times are dropped; unknown enum values take
    defaults; unknown characters and speakers are dropped; shots are sorted, cut times snapped
    (`snap_times`, then the frame grid) and clamped to [0, duration]; gaps extend the previous
    shot; shots under MIN_SHOT_S merge into a neighbour, those over MAX_SHOT_S are split; ids,
    voices and seeds are set.

    Args:
        raw: the parsed answer: ``{"shots": [...]}`` (a bare list is accepted).
        brief: the validated brief.
        duration_s: running time in seconds.
        fps: the plan's frame rate.
        snap_times: maps proposed cut times to allowed ones (e.g. beats); same length.
        sections: labelled section starts, to label shots the answer left unlabelled.

    Returns:
        (plan, repairs, problems): the plan is None when nothing usable was found; problems
        lists what still makes it unusable (empty for a good plan), including shots covering
        less than half the running time.
    """
    repairs: list[str] = []
    total_f = round(duration_s * fps)
    if total_f < 1:
        return None, repairs, [f"duration_s {duration_s} is under one frame at {fps} fps"]
    items, problem = _shot_items(raw, repairs)
    if problem:
        return None, repairs, [problem]
    end_s = total_f / fps
    drafts = [d for i, item in enumerate(items)
              if (d := _draft(i, item, brief, end_s, repairs)) is not None]
    if not drafts:
        return None, _capped(repairs), ["no usable shots (each needs start_s < end_s, in seconds, "
                                        f"within 0 to {end_s:.3f})"]
    coverage = _covered_s(drafts)
    drafts = _order(drafts, end_s, fps, repairs)
    _snap(drafts, total_f, fps, snap_times, repairs)
    drafts = _mergeshorten(drafts, total_f, fps, repairs)
    drafts = _split_long(drafts, total_f, fps, snap_times, repairs)
    drafts = _limit_count(drafts, total_f, repairs)
    plan = _build_plan(drafts, brief, total_f, fps, sections, repairs)
    repairs = _capped(repairs)
    plan.notes = list(repairs)
    problems = plan_problems(plan, {c.name for c in brief.characters})
    if coverage < MIN_COVERAGE * end_s:
        problems.append(f"shots: they cover only {coverage:.1f} s of the {end_s:.1f} s "
                        "running time; plan the whole video")
    return plan, repairs, problems


def _capped(notes: list[str]) -> list[str]:
    if len(notes) <= _MAX_NOTES:
        return notes
    return [*notes[:_MAX_NOTES], f"and {len(notes) - _MAX_NOTES} more repairs"]


def _shot_items(raw: object, repairs: list[str]) -> tuple[list[object], str | None]:
    if isinstance(raw, dict) and "shots" not in raw and isinstance(raw.get("plan"), dict):
        raw = raw["plan"]
    if isinstance(raw, list):
        repairs.append('the answer was a bare list; read it as {"shots": [...]}')
        items: object = raw
    elif isinstance(raw, dict):
        items = raw.get("shots")
    else:
        return [], 'the answer is not a JSON object {"shots": [...]}'
    if not isinstance(items, list) or not items:
        return [], 'the answer has no "shots" list, or it is empty'
    if len(items) > _MAX_RAW_ITEMS:
        repairs.append(f"the answer had {len(items)} shots; read the first {_MAX_RAW_ITEMS}")
        items = items[:_MAX_RAW_ITEMS]
    return items, None


def _seconds(value: object) -> float | None:
    """Seconds from a number, "1.5", "1.5s" or "m:ss.f"; None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().removesuffix("s").strip()
        try:
            minutes, _, rest = text.rpartition(":")
            number = float(rest) + (float(minutes) * 60 if minutes else 0.0)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _draft(index: int, item: object, brief: Brief, end_s: float,
           repairs: list[str]) -> _Draft | None:
    where = f"shots[{index}]"
    if not isinstance(item, dict):
        repairs.append(f"{where}: not an object; dropped")
        return None
    start, end = _seconds(item.get("start_s")), _seconds(item.get("end_s"))
    if start is None or end is None or end <= start:
        repairs.append(f"{where}: unusable times (start_s={item.get('start_s')!r}, "
                       f"end_s={item.get('end_s')!r}); dropped")
        return None
    if start >= end_s or end <= 0:
        repairs.append(f"{where}: {start:g}–{end:g} s is outside the running time "
                       f"(0–{end_s:g} s); dropped")
        return None
    if start < 0 or end > end_s + 1e-6:
        repairs.append(f"{where}: {start:g}–{end:g} s clamped to the running time "
                       f"(0–{end_s:g} s)")
    return _Draft(max(start, 0.0), min(end, end_s), _content(where, item, brief, repairs))


def _content(where: str, item: dict[str, Any], brief: Brief,
             repairs: list[str]) -> dict[str, Any]:
    size = _choice(where, "shot_size", item, SHOT_SIZES, "medium", repairs, _SIZE_ALIASES)
    characters = _characters(where, item.get("characters"), brief, repairs)
    location = _text(where, "location", item, repairs)
    daylight = _choice(where, "time_of_day", item, TIMES_OF_DAY, time_of_day(brief), repairs)
    description = _text(where, "description", item, repairs)
    prompt = _text(where, "image_prompt", item, repairs)
    if not prompt:
        repairs.append(f"{where}: no image_prompt; composed one from the brief")
        prompt = _compose_prompt(brief, size, characters, location, daylight, description)
    return {
        "section": _text(where, "section", item, repairs),
        "description": description,
        "shot_size": size,
        "camera_angle": _choice(where, "camera_angle", item, CAMERA_ANGLES, "eye_level", repairs),
        "camera_move": _choice(where, "camera_move", item, CAMERA_MOVES, "static", repairs),
        "characters": characters,
        "location": location,
        "time_of_day": daylight,
        "dialogue": _dialogue(where, item.get("dialogue"), brief, repairs),
        "transition": _choice(where, "transition", item, TRANSITIONS, "cut", repairs),
        "image_prompt": prompt[:2000],
        "lyrics": _lyrics(item.get("lyrics")),
    }


def _choice(where: str, key: str, item: dict[str, Any], allowed: tuple[str, ...], default: str,
            repairs: list[str], aliases: dict[str, str] | None = None) -> str:
    value = item.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        token = re.sub(r"[\s\-]+", "_", value.strip().lower()).removesuffix("_shot")
        token = (aliases or {}).get(token, token)
        if token in allowed:
            return token
    repairs.append(f"{where}.{key}: {value!r} is not one of {', '.join(allowed)}; "
                   f"used {default!r}")
    return default


def _text(where: str, key: str, item: dict[str, Any], repairs: list[str]) -> str:
    value = item.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    repairs.append(f"{where}.{key}: not text; left empty")
    return ""


def _names(brief: Brief) -> dict[str, str]:
    return {c.name.casefold(): c.name for c in brief.characters}


def _characters(where: str, value: object, brief: Brief, repairs: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        repairs.append(f"{where}.characters: not a list; left empty")
        return []
    known = _names(brief)
    cast: list[str] = []
    for name in value:
        found = known.get(name.strip().casefold()) if isinstance(name, str) else None
        if found is None:
            repairs.append(f"{where}.characters: {name!r} is not in the brief; dropped")
        elif found not in cast:
            cast.append(found)
    return cast


def _dialogue(where: str, value: object, brief: Brief, repairs: list[str]) -> list[Dialogue]:
    if value is None or value == []:
        return []
    if not isinstance(value, list):
        repairs.append(f"{where}.dialogue: not a list; dropped")
        return []
    known = _names(brief)
    lines: list[Dialogue] = []
    for index, line in enumerate(value):
        spot = f"{where}.dialogue[{index}]"
        if not isinstance(line, dict):
            repairs.append(f"{spot}: not an object; dropped")
            continue
        speaker, text = line.get("speaker"), line.get("text")
        name = known.get(speaker.strip().casefold()) if isinstance(speaker, str) else None
        if name is None:
            repairs.append(f"{spot}: speaker {speaker!r} is not in the brief; line dropped")
        elif not isinstance(text, str) or not text.strip():
            repairs.append(f"{spot}: no text; dropped")
        else:
            if len(text.strip()) > 500:
                repairs.append(f"{spot}: text over 500 characters; cut short")
            lines.append(Dialogue(speaker=name, text=text.strip()[:500],
                                  voice=default_voice(brief, name)))
    return lines


def _lyrics(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [line for line in value if isinstance(line, str) and line.strip()]


def _compose_prompt(brief: Brief, size: str, cast: list[str], location: str, daylight: str,
                    description: str) -> str:
    looks = [f"{c.name}, {c.description}" if c.description else c.name
             for c in brief.characters if c.name in cast]
    parts = [brief.style, f"{size.replace('_', ' ')} shot", description, location, *looks,
             daylight.replace("_", " "), brief.mood]
    return ", ".join(p for p in parts if p)


def _covered_s(drafts: list[_Draft]) -> float:
    """Seconds of the running time covered by at least one shot (the union of their spans)."""
    covered, reach = 0.0, 0.0
    for draft in sorted(drafts, key=lambda d: d.start_s):
        start = max(draft.start_s, reach)
        if draft.end_s > start:
            covered += draft.end_s - start
            reach = draft.end_s
    return covered


def _order(drafts: list[_Draft], end_s: float, fps: int, repairs: list[str]) -> list[_Draft]:
    """Sort by start, keep at most MAX_SHOTS, and note gaps, overlaps and loose ends."""
    ordered = sorted(drafts, key=lambda d: d.start_s)
    if any(a is not b for a, b in zip(ordered, drafts, strict=True)):
        repairs.append("shots were not in time order; sorted by start_s")
    if len(ordered) > MAX_SHOTS:
        repairs.append(f"{len(ordered)} shots is over the limit of {MAX_SHOTS}; "
                       f"kept the first {MAX_SHOTS}")
        ordered = ordered[:MAX_SHOTS]
    tolerance = max(0.5 / fps, 1e-3)
    if ordered[0].start_s > tolerance:
        repairs.append(f"the first shot started at {ordered[0].start_s:.3f} s; "
                       "it now starts at 0")
    for previous, draft in zip(ordered, ordered[1:], strict=False):
        if draft.start_s > previous.end_s + tolerance:
            repairs.append(f"gap {previous.end_s:.3f}–{draft.start_s:.3f} s; "
                           "the previous shot extended over it")
        elif draft.start_s < previous.end_s - tolerance:
            repairs.append(f"shots overlap at {draft.start_s:.3f}–{previous.end_s:.3f} s; "
                           f"cut at {draft.start_s:.3f} s")
    if ordered[-1].end_s < end_s - tolerance:
        repairs.append(f"the last shot ended at {ordered[-1].end_s:.3f} s; "
                       f"it now ends at {end_s:.3f} s")
    return ordered


def _grid(times: list[float], fps: int, total_f: int) -> list[int]:
    return [min(max(round(t * fps), 0), total_f) for t in times]


def _snapped(times: list[float], snap_times: SnapTimes | None, fps: int, total_f: int,
             repairs: list[str]) -> list[int]:
    """Frames for cut `times`: `snap_times` first (ignored, with a note, if it misbehaves)."""
    if snap_times is not None and times:
        try:
            moved = [float(t) for t in snap_times(list(times))]
        except Exception as exc:  # noqa: BLE001 - a faulty snapper must not lose the plan
            repairs.append(f"snapping cut times failed ({exc}); used the frame grid")
        else:
            if len(moved) == len(times) and all(math.isfinite(t) for t in moved):
                return _grid(moved, fps, total_f)
            repairs.append("snapping returned a different number of cut times; "
                           "used the frame grid")
    return _grid(times, fps, total_f)


def _snap(drafts: list[_Draft], total_f: int, fps: int, snap_times: SnapTimes | None,
          repairs: list[str]) -> None:
    """Each shot starts where the next ends; cut times go on the allowed times and frames."""
    frames = _snapped([d.start_s for d in drafts[1:]], snap_times, fps, total_f, repairs)
    drafts[0].start_f = 0
    for draft, frame in zip(drafts[1:], frames, strict=True):
        draft.start_f = frame
    for previous, draft in zip(drafts, drafts[1:], strict=False):
        draft.start_f = max(draft.start_f, previous.start_f)


def _lengths(drafts: list[_Draft], total_f: int) -> list[int]:
    ends = [d.start_f for d in drafts[1:]] + [total_f]
    return [end - d.start_f for d, end in zip(drafts, ends, strict=True)]


def _absorb(keeper: _Draft, gone: _Draft) -> None:
    keeper.content["dialogue"] = [*keeper.content["dialogue"], *gone.content["dialogue"]]
    keeper.content["lyrics"] = [*keeper.content["lyrics"], *gone.content["lyrics"]]


def _mergeshorten(drafts: list[_Draft], total_f: int, fps: int,
                 repairs: list[str]) -> list[_Draft]:
    """Shots under MIN_SHOT_S go: the previous shot (or for the first, the next) covers them."""
    shortest = math.ceil(MIN_SHOT_S * fps - 1e-9)
    drafts = list(drafts)
    while len(drafts) > 1:
        lengths = _lengths(drafts, total_f)
        index = next((i for i, n in enumerate(lengths) if n < shortest), None)
        if index is None:
            break
        gone = drafts.pop(index)
        span = f"{gone.start_f / fps:.3f}–{(gone.start_f + lengths[index]) / fps:.3f} s"
        if index == 0:
            drafts[0].start_f = 0
            _absorb(drafts[0], gone)
            repairs.append(f"shot at {span} was under {MIN_SHOT_S:g} s; the next shot covers it")
        else:
            _absorb(drafts[index - 1], gone)
            repairs.append(f"shot at {span} was under {MIN_SHOT_S:g} s; "
                           "the previous shot covers it")
    return drafts


def _split_long(drafts: list[_Draft], total_f: int, fps: int, snap_times: SnapTimes | None,
                repairs: list[str]) -> list[_Draft]:
    """Shots over MAX_SHOT_S become several of the same content (dialogue on the first)."""
    longest = math.floor(MAX_SHOT_S * fps + 1e-9)
    shortest = math.ceil(MIN_SHOT_S * fps - 1e-9)
    result: list[_Draft] = []
    for draft, length in zip(drafts, _lengths(drafts, total_f), strict=True):
        result.append(draft)
        if length <= longest:
            continue
        cuts = _split_cuts(draft.start_f, length, longest, shortest, fps, snap_times)
        for cut in cuts:
            content = {**draft.content, "dialogue": [], "lyrics": []}
            result.append(_Draft(cut / fps, cut / fps, content, start_f=cut))
        repairs.append(f"shot at {draft.start_f / fps:.3f}–{(draft.start_f + length) / fps:.3f}"
                       f" s was over {MAX_SHOT_S:g} s; split into {len(cuts) + 1} shots")
    return result


def _split_cuts(start_f: int, length: int, longest: int, shortest: int, fps: int,
                snap_times: SnapTimes | None) -> list[int]:
    """Even cut frames inside a long shot; on `snap_times` when every piece still fits."""
    count = math.ceil(length / longest)
    even = [start_f + round(length * k / count) for k in range(1, count)]
    if snap_times is not None:
        moved = _snapped([f / fps for f in even], snap_times, fps, start_f + length, [])
        edges = [start_f, *moved, start_f + length]
        pieces = [b - a for a, b in zip(edges, edges[1:], strict=False)]
        if all(shortest <= p <= longest for p in pieces):
            return moved
    return even


def _limit_count(drafts: list[_Draft], total_f: int, repairs: list[str]) -> list[_Draft]:
    """Merge the neighbours with the shortest combined length until at most MAX_SHOTS remain."""
    if len(drafts) <= MAX_SHOTS:
        return drafts
    before = len(drafts)
    drafts = list(drafts)
    while len(drafts) > MAX_SHOTS:
        lengths = _lengths(drafts, total_f)
        pair = min(range(len(drafts) - 1), key=lambda i: lengths[i] + lengths[i + 1])
        _absorb(drafts[pair], drafts.pop(pair + 1))
    repairs.append(f"{before} shots is over the limit of {MAX_SHOTS}; merged the shortest "
                   "neighbours")
    return drafts


def _build_plan(drafts: list[_Draft], brief: Brief, total_f: int, fps: int,
                sections: Sequence[Section] | None, repairs: list[str]) -> Plan:
    ends = [d.start_f for d in drafts[1:]] + [total_f]
    shots = []
    for index, (draft, end_f) in enumerate(zip(drafts, ends, strict=True)):
        content = dict(draft.content)
        start_s = draft.start_f / fps
        if not content["section"] and sections:
            content["section"] = _section_at(sections, start_s)
        shots.append(Shot(id=f"s{index + 1:03d}", start_s=start_s, end_s=end_f / fps,
                          seed=shot_seed(brief, index), **content))
    _note_missing_dialogue(brief, shots, repairs)
    width, height = brief.size
    return Plan(title=brief.title, duration_s=total_f / fps, width_px=width, height_px=height,
                fps=fps, planner="llm", shots=shots)


def _section_at(sections: Sequence[Section], start_s: float) -> str:
    label = sections[0].label
    for section in sections:
        if section.start_s <= start_s + 1e-6:
            label = section.label
    return label


def _note_missing_dialogue(brief: Brief, shots: list[Shot], repairs: list[str]) -> None:
    placed = {(line.speaker, line.text) for shot in shots for line in shot.dialogue}
    for index, line in enumerate(brief.dialogue):
        if (line.speaker, line.text) not in placed:
            repairs.append(f"brief dialogue[{index}] ({line.speaker}: {line.text[:40]!r}) "
                           "is in no shot")


def repair_answer(text: str, brief: Brief, duration_s: float, snap_times: SnapTimes | None,
                 sections: Sequence[Section] | None,
                  ) -> tuple[Plan | None, list[str], list[str]]:
    """(plan, repairs, problems) for an answer's text, as `repair_shots` returns them."""
    raw = extract_json(text)
    if raw is None:
        return None, [], ['the answer has no JSON object; answer with {"shots": [...]} only']
    try:
        return repair_shots(raw, brief, duration_s, brief.fps, snap_times, sections=sections)
    except Exception as exc:  # noqa: BLE001 - garbage must never raise out of the planner
        return None, [], [f"the answer could not be read as a plan ({type(exc).__name__}: "
                          f"{shorten(str(exc))})"]



def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

