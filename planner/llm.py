"""The LLM planner: asks any OpenAI-compatible chat-completions endpoint for a shot plan.

The answer is parsed, validated and repaired into a renderable `Plan`; when the model cannot
produce one (after one re-ask listing the problems), or the endpoint times out or fails, the
heuristic planner takes over and the plan says why. Nothing the LLM answers raises out of
`plan_with_llm` or yields an invalid plan.

Output format negotiation, per endpoint:

1. ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, recent llama.cpp);
2. if rejected: ``{"type": "json_object", "schema": ...}`` (llama.cpp's server takes a schema here);
3. if rejected too: no ``response_format``; the first JSON object is taken from the prose.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import openai
from openai import AsyncOpenAI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kantoku.planner.brief import Brief
from kantoku.planner.heuristic import (
    Section,
    default_voice,
    heuristic_plan,
    shot_seed,
    time_of_day,
)
from kantoku.planner.plan import (
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
Mode = Literal["json_schema", "json_object", "none"]
#: Response formats, most to least constrained; a rejected one moves to the next.
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "none")
SnapTimes = Callable[[list[float]], list[float]]

#: HTTP statuses with which servers reject a request parameter they do not support.
_REJECT_STATUSES = {400, 415, 422, 501}
_REJECT_WORDS = ("response_format", "json_schema", "unsupported", "not supported")
#: Fewer than this share of the running time covered by the answer's shots is not a plan.
MIN_COVERAGE = 0.5
#: Items of an answer looked at; the rest is dropped unread.
_MAX_RAW_ITEMS = 4 * MAX_SHOTS
_MAX_NOTES = 50
_ECHO_CHARS = 4000

_SIZE_ALIASES = {"ecu": "extreme_close_up", "cu": "close_up", "mcu": "medium_close_up",
                 "ms": "medium", "mid": "medium", "ws": "wide", "ls": "wide", "long": "wide",
                 "fs": "full", "els": "extreme_wide", "ews": "extreme_wide",
                 "establishing": "extreme_wide"}


class LLMSettings(BaseSettings):
    """Which OpenAI-compatible endpoint plans, from the environment."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL",
                                 description="e.g. http://127.0.0.1:8080/v1 for llama.cpp")
    api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    model: str | None = Field(default=None, validation_alias="KANTOKU_LLM_MODEL")
    timeout_s: float = Field(default=60.0, gt=0, validation_alias="KANTOKU_LLM_TIMEOUT_S")
    #: Transport retries by the openai client (connection errors, 429, 5xx), per request.
    max_retries: int = Field(default=1, ge=0, le=5, validation_alias="KANTOKU_LLM_MAX_RETRIES")
    #: Sent only when set: some models reject any temperature.
    temperature: float | None = Field(default=None, ge=0, le=2,
                                      validation_alias="KANTOKU_LLM_TEMPERATURE")


def llm_settings() -> LLMSettings:
    """Current settings, read fresh from the environment."""
    return LLMSettings()


def llm_configured(settings: LLMSettings | None = None) -> bool:
    """True when an endpoint (a base URL or an API key) and a model are set.

    Args:
        settings: settings to check; read from the environment when omitted.
    """
    settings = settings or llm_settings()
    return bool((settings.base_url or settings.api_key) and settings.model)


def make_client(settings: LLMSettings) -> AsyncOpenAI:
    """An AsyncOpenAI client for `settings` (local servers get a placeholder key)."""
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return AsyncOpenAI(base_url=settings.base_url, api_key=key or "no-key",
                       timeout=settings.timeout_s, max_retries=settings.max_retries)


@dataclass
class LLMPlanResult:
    """A plan and how it was made.

    Attributes:
        plan: always renderable (`plan_problems` is empty).
        calls: one record per HTTP request, for the ledger.
        repairs: what was fixed in the LLM's answer (also in `plan.notes`).
        fallback_reason: why the heuristic planner was used; None when the LLM's plan was.
    """

    plan: Plan
    calls: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    fallback_reason: str | None = None


class _LLMFailure(Exception):
    """The endpoint could not be used (timeout, connection, HTTP error); message says why."""


# --- the schema and the prompt --------------------------------------------------------------


def shot_plan_schema(brief: Brief) -> dict[str, Any]:
    """The JSON schema the LLM answers in: ``{"shots": [...]}`` with the brief's names."""
    names = [c.name for c in brief.characters]
    name: dict[str, Any] = {"type": "string", "enum": names} if names else {"type": "string"}
    people: dict[str, Any] = {"type": "array", "items": name}
    if not names:
        people["maxItems"] = 0
    line = {"type": "object", "additionalProperties": False, "required": ["speaker", "text"],
            "properties": {"speaker": name, "text": {"type": "string"}}}
    shot = {
        "type": "object",
        "additionalProperties": False,
        "required": ["start_s", "end_s", "shot_size", "description", "image_prompt"],
        "properties": {
            "start_s": {"type": "number", "minimum": 0},
            "end_s": {"type": "number", "minimum": 0},
            "section": {"type": "string"},
            "description": {"type": "string"},
            "shot_size": {"type": "string", "enum": list(SHOT_SIZES)},
            "camera_angle": {"type": "string", "enum": list(CAMERA_ANGLES)},
            "camera_move": {"type": "string", "enum": list(CAMERA_MOVES)},
            "characters": people,
            "location": {"type": "string"},
            "time_of_day": {"type": "string", "enum": list(TIMES_OF_DAY)},
            "dialogue": {"type": "array", "items": line},
            "transition": {"type": "string", "enum": list(TRANSITIONS)},
            "image_prompt": {"type": "string"},
        },
    }
    return {"type": "object", "additionalProperties": False, "required": ["shots"],
            "properties": {"shots": {"type": "array", "minItems": 1, "maxItems": MAX_SHOTS,
                                     "items": shot}}}


def build_messages(brief: Brief, duration_s: float, *, context: dict[str, Any] | None = None,
                   sections: Sequence[Section] | None = None) -> list[dict[str, str]]:
    """The system and user messages asking for a plan of `duration_s` seconds.

    Args:
        brief: the validated brief (reference image paths and holders are not sent).
        duration_s: running time in seconds.
        context: extra facts (song analysis: beats, sections, lyric lines), sent as JSON.
        sections: labelled section starts the plan should follow.
    """
    names = ", ".join(c.name for c in brief.characters) or "none"
    rules = [
        'Answer with one JSON object {"shots": [...]} following the JSON schema below, '
        "and nothing else.",
        f"The video lasts exactly {duration_s:.3f} s at {brief.fps} fps. Shots are contiguous: "
        "the first starts at 0, each starts where the previous ends, and the last ends at "
        f"{duration_s:.3f}.",
        f"Every shot lasts {MIN_SHOT_S:g} to {MAX_SHOT_S:g} s (2 to 5 s reads well); "
        f"at most {MAX_SHOTS} shots.",
        f"characters and dialogue speakers are only the brief's characters: {names}.",
        "Place each of the brief's dialogue lines, in order, on a shot that shows its speaker.",
        "image_prompt is a self-contained text-to-image prompt: style, framing, subject, "
        "place, light.",
    ]
    if sections:
        rules.append("Follow the sections: each shot's section is the section it starts in.")
    if context:
        rules.append("Use the facts in context (e.g. beats, sections, lyrics) to time the cuts.")
    system = ("You are the planner of kantoku, a film director's assistant: you turn a brief "
              "into a shot plan.\nRules:\n" + "\n".join(f"- {r}" for r in rules)
              + "\nJSON schema:\n" + json.dumps(shot_plan_schema(brief), ensure_ascii=False))
    request: dict[str, Any] = {"brief": _brief_facts(brief), "duration_s": round(duration_s, 3),
                               "fps": brief.fps}
    if sections:
        request["sections"] = [{"label": s.label, "start_s": round(s.start_s, 3)}
                               for s in sections]
    if context:
        request["context"] = context
    user = json.dumps(request, ensure_ascii=False, default=str)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _brief_facts(brief: Brief) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "title": brief.title, "logline": brief.logline, "language": brief.language,
        "aspect": brief.aspect, "style": brief.style, "mood": brief.mood,
        "locations": brief.locations,
        "characters": [{"name": c.name, "description": c.description}
                       for c in brief.characters],
        "dialogue": [{"speaker": d.speaker, "text": d.text} for d in brief.dialogue],
    }
    if brief.song and brief.song.title:
        facts["song"] = brief.song.title
    return facts


def response_format(mode: Mode, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request field for `mode` (None: send none)."""
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "shot_plan", "schema": schema, "strict": False}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


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
    drafts = _merge_short(drafts, total_f, fps, repairs)
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


def _merge_short(drafts: list[_Draft], total_f: int, fps: int,
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


# --- talking to the endpoint ------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _host(client: AsyncOpenAI) -> str:
    url = client.base_url
    return f"{url.host}:{url.port}" if url.port else str(url.host)


def _rejects_format(exc: openai.APIStatusError) -> bool:
    """Whether an HTTP error means 'this response_format is not supported here'."""
    text = str(exc).lower()
    return exc.status_code in _REJECT_STATUSES or any(w in text for w in _REJECT_WORDS)


def _describe_error(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return f"the LLM timed out (timeout {timeout_s:g} s)"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"could not connect to the LLM ({type(cause).__name__}: {cause})"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM server answered HTTP {exc.status_code} ({_short(str(exc))})"
    return f"the LLM call failed ({type(exc).__name__}: {_short(str(exc))})"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Session:
    """One planning conversation: the client, settings, and the ledger of calls."""

    client: AsyncOpenAI
    settings: LLMSettings
    model: str
    schema: dict[str, Any]
    calls: list[dict[str, Any]] = field(default_factory=list)
    mode_index: int = 0

    async def ask(self, messages: list[dict[str, str]], attempt: int) -> str:
        """The answer text, trying response formats until one is accepted.

        Raises:
            _LLMFailure: on a timeout, connection or HTTP error, or when every format is refused.
        """
        while True:
            mode = MODES[self.mode_index]
            try:
                return await self._call(messages, mode, attempt)
            except openai.APIStatusError as exc:
                if self.mode_index + 1 < len(MODES) and _rejects_format(exc):
                    self.mode_index += 1
                    continue
                raise _LLMFailure(_describe_error(exc, self.settings.timeout_s)) from exc
            except Exception as exc:  # noqa: BLE001 - any failure falls back, never raises
                raise _LLMFailure(_describe_error(exc, self.settings.timeout_s)) from exc

    async def _call(self, messages: list[dict[str, str]], mode: Mode, attempt: int) -> str:
        prompt = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        record: dict[str, Any] = {
            "model": self.model, "base_url_host": _host(self.client), "response_format": mode,
            "attempt": attempt, "latency_ms": 0, "prompt_sha256": _sha256(prompt),
            "response_sha256": None, "error": None, "usage": None, "finish_reason": None,
            "ok": False}
        self.calls.append(record)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._deadline_s()):
                completion = await self.client.chat.completions.create(
                    **self._request(messages, mode))
        except BaseException as exc:
            record["error"] = _describe_error(exc, self.settings.timeout_s)
            raise
        finally:
            record["latency_ms"] = round((time.perf_counter() - started) * 1000)
        if completion.usage is not None:
            usage = completion.usage
            record["usage"] = {"prompt_tokens": usage.prompt_tokens,
                               "completion_tokens": usage.completion_tokens,
                               "total_tokens": usage.total_tokens}
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content if choice else None) or ""
        record["finish_reason"] = choice.finish_reason if choice else None
        record["response_sha256"] = _sha256(text)
        return text

    def _request(self, messages: list[dict[str, str]], mode: Mode) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        fmt = response_format(mode, self.schema)
        if fmt is not None:
            request["response_format"] = fmt
        if self.settings.temperature is not None:
            request["temperature"] = self.settings.temperature
        return request

    def _deadline_s(self) -> float:
        """A guard over the client's own timeout and retries (slow-trickling servers)."""
        return self.settings.timeout_s * (self.settings.max_retries + 1) + 10.0

    def judge(self, ok: bool, problems: list[str]) -> None:
        """Record on the latest call whether its answer made a plan, and if not, why."""
        record = self.calls[-1]
        record["ok"] = ok
        if not ok and record["error"] is None:
            record["error"] = "unusable answer: " + "; ".join(problems[:3])


def _reask(messages: list[dict[str, str]], answer: str,
           problems: list[str]) -> list[dict[str, str]]:
    listed = "\n".join(f"- {p}" for p in problems[:20])
    echo = answer if len(answer) <= _ECHO_CHARS else answer[:_ECHO_CHARS] + "…"
    return [*messages, {"role": "assistant", "content": echo},
            {"role": "user", "content": "Your answer could not be used:\n" + listed +
             '\nAnswer again with the complete, corrected JSON object {"shots": [...]} and '
             "nothing else."}]


def _repair_text(text: str, brief: Brief, duration_s: float, snap_times: SnapTimes | None,
                 sections: Sequence[Section] | None,
                 ) -> tuple[Plan | None, list[str], list[str]]:
    raw = extract_json(text)
    if raw is None:
        return None, [], ['the answer has no JSON object; answer with {"shots": [...]} only']
    try:
        return repair_shots(raw, brief, duration_s, brief.fps, snap_times, sections=sections)
    except Exception as exc:  # noqa: BLE001 - garbage must never raise out of the planner
        return None, [], [f"the answer could not be read as a plan ({type(exc).__name__}: "
                          f"{_short(str(exc))})"]


def _fallback(brief: Brief, duration_s: float, sections: Sequence[Section] | None,
              calls: list[dict[str, Any]], reason: str) -> LLMPlanResult:
    plan = heuristic_plan(brief, duration_s, sections=sections,
                          notes=[f"LLM planner not used: {reason}; planned by the heuristic "
                                 "planner instead"])
    plan.planner = f"heuristic (fallback: {_short(reason, 120)})"
    return LLMPlanResult(plan=plan, calls=calls, repairs=[], fallback_reason=reason)


async def plan_with_llm(brief: Brief, duration_s: float, *, client: AsyncOpenAI | None = None,
                        settings: LLMSettings | None = None,
                        context: dict[str, Any] | None = None,
                        snap_times: SnapTimes | None = None,
                        sections: Sequence[Section] | None = None) -> LLMPlanResult:
    """Plan with the configured LLM; fall back to the heuristic planner when it cannot.

    The LLM is asked once, and re-asked once with the problems listed if its answer cannot be
    repaired into a plan. Timeouts, connection and HTTP errors fall back at once. This never
    raises for anything the endpoint does, and the plan is always renderable.

    Args:
        brief: the validated brief.
        duration_s: running time in seconds (the song's, or the brief's).
        client: an AsyncOpenAI client (keeps its own timeout and retries); by default one is
            made from `settings` and closed afterwards.
        settings: endpoint, model, timeout; read from the environment when omitted.
        context: extra facts for the prompt (song analysis: beats, sections, lyric lines).
        snap_times: maps proposed cut times to allowed ones (e.g. beats); the frame grid
            is always applied after it.
        sections: labelled section starts, for the prompt, unlabelled shots and the fallback.

    Returns:
        The plan (``planner`` "llm", or "heuristic (fallback: ...)"), the calls made, the
        repairs applied, and the fallback reason if any.
    """
    settings = settings or llm_settings()
    if not settings.model:
        return _fallback(brief, duration_s, sections, [],
                         "no LLM model configured (set KANTOKU_LLM_MODEL)")
    own = client is None
    session = _Session(client or make_client(settings), settings, settings.model,
                       shot_plan_schema(brief))
    try:
        return await _converse(session, brief, duration_s, context, snap_times, sections)
    except Exception as exc:  # noqa: BLE001 - the planner must always produce a plan
        return _fallback(brief, duration_s, sections, session.calls,
                         f"unexpected error ({type(exc).__name__}: {_short(str(exc))})")
    finally:
        if own:
            await session.client.close()


async def _converse(session: _Session, brief: Brief, duration_s: float,
                    context: dict[str, Any] | None, snap_times: SnapTimes | None,
                    sections: Sequence[Section] | None) -> LLMPlanResult:
    messages = build_messages(brief, duration_s, context=context, sections=sections)
    problems: list[str] = []
    for attempt in (1, 2):
        try:
            text = await session.ask(messages, attempt)
        except _LLMFailure as exc:
            return _fallback(brief, duration_s, sections, session.calls, str(exc))
        plan, repairs, problems = _repair_text(text, brief, duration_s, snap_times, sections)
        if problems and session.calls[-1]["finish_reason"] == "length":
            problems = ["the answer was cut off at the token limit; write shorter descriptions "
                        "and image prompts", *problems]
        session.judge(plan is not None and not problems, problems)
        if plan is not None and not problems:
            plan.planner = "llm"
            return LLMPlanResult(plan=plan, calls=session.calls, repairs=repairs)
        messages = _reask(messages, text, problems)
    reason = "the LLM's answers were unusable twice (" + "; ".join(problems[:3]) + ")"
    return _fallback(brief, duration_s, sections, session.calls, reason)
