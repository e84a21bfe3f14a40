"""The LLM planner: asks any OpenAI-compatible chat-completions endpoint for a shot plan.

This module is the conversation; `repair.py` turns each answer into a renderable `Plan`. When
the model cannot produce one (after one re-ask listing the problems), or the endpoint times out
or fails, the heuristic planner takes over and the plan says why. Nothing the LLM answers
raises out of `plan_with_llm` or yields an invalid plan.

Output format negotiation, per endpoint:

1. ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, recent llama.cpp);
2. if rejected: ``{"type": "json_object", "schema": ...}`` (llama.cpp's server takes a schema here);
3. if rejected too: no ``response_format``; the first JSON object is taken from the prose.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.heuristic import Section, heuristic_plan
from kantoku.planner.planning.plan import (
    CAMERA_ANGLES,
    CAMERA_MOVES,
    MAX_SHOT_S,
    MAX_SHOTS,
    MIN_SHOT_S,
    SHOT_SIZES,
    TIMES_OF_DAY,
    Plan,
)
from kantoku.planner.planning.repair import TRANSITIONS, SnapTimes, repair_answer, shorten

Mode = Literal["json_schema", "json_object", "none"]
#: Response formats, most to least constrained; a rejected one moves to the next.
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "none")

#: HTTP statuses with which servers reject a request parameter they do not support.
_REJECT_STATUSES = {400, 415, 422, 501}
_REJECT_WORDS = ("response_format", "json_schema", "unsupported", "not supported")
_ECHO_CHARS = 4000


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
        return f"the LLM server answered HTTP {exc.status_code} ({shorten(str(exc))})"
    return f"the LLM call failed ({type(exc).__name__}: {shorten(str(exc))})"



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


def _fallback(brief: Brief, duration_s: float, sections: Sequence[Section] | None,
              calls: list[dict[str, Any]], reason: str) -> LLMPlanResult:
    plan = heuristic_plan(brief, duration_s, sections=sections,
                          notes=[f"LLM planner not used: {reason}; planned by the heuristic "
                                 "planner instead"])
    plan.planner = f"heuristic (fallback: {shorten(reason, 120)})"
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
                         f"unexpected error ({type(exc).__name__}: {shorten(str(exc))})")
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
        plan, repairs, problems = repair_answer(text, brief, duration_s, snap_times, sections)
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
