"""One call of a product's chat model: streamed, with tools, bounded, recorded; and where the
model is (the studio's chat and the avatar's conversation both talk through it).

`stream_reply` streams one chat completion: its text piece by piece, its tool calls assembled
from their streamed pieces, and a record of the call for the job's ledger (model, endpoint,
tokens, latency, tool calls). A server that refuses usage reports or tools is asked again
without them; one that writes past max_tokens is cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai

from kantoku.planner.planning.endpoint import (
    EMBEDDED_TEMPERATURE,
    Endpoint,
    LLMSession,
    LLMSettings,
    describe_error,
    llm_configured,
    llm_settings,
)

#: Longest reply of one model call, in tokens (KANTOKU_LLM_MAX_TOKENS lowers it).
REPLY_MAX_TOKENS = 512
#: The embedded model's replies: a few sentences (it writes about five tokens a second on a
#: busy CPU, and rambles when let).
EMBEDDED_MAX_TOKENS = 96
#: A server that ignores max_tokens is cut off this far past it.
_RUNAWAY_FACTOR, _RUNAWAY_SLACK = 1.25, 32


class ChatFailure(Exception):
    """The model could not answer (timeout, connection, HTTP error, runaway output)."""

    def __init__(self, detail: str, reason: str = "LLM_FAILED") -> None:
        super().__init__(detail)
        self.detail, self.reason = detail, reason


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class ModelReply:
    text: str
    tool_calls: list[ToolCall]
    record: dict[str, Any]


def _sha256(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def stream_reply(session: LLMSession, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]] | None, *, endpoint: str,
                       max_tokens: int, on_token: Callable[[str], None],
                       records: list[dict[str, Any]]) -> ModelReply:
    """One streamed chat completion: its text (each piece to `on_token` as it comes) and its
    tool calls (assembled from their streamed pieces); the call's record for the ledger goes
    to `records` first, so a failed call is recorded too.

    Raises:
        ChatFailure: a timeout, connection or HTTP error, or a model writing past max_tokens.
    """
    settings = session.settings
    max_tokens = min(max_tokens, settings.max_tokens or max_tokens)
    request: dict[str, Any] = {"model": session.model, "messages": messages, "stream": True,
                               "max_tokens": max_tokens,
                               "stream_options": {"include_usage": True}}
    if tools:
        request["tools"] = tools
    temperature = settings.temperature
    if temperature is None and session.endpoint.embedded:
        temperature = EMBEDDED_TEMPERATURE
    if temperature is not None:
        request["temperature"] = temperature
    record: dict[str, Any] = {
        "purpose": "chat", "model": session.model, "endpoint": endpoint,
        "base_url_host": session.host, "max_tokens": max_tokens,
        "timeout_s": settings.timeout_s, "latency_ms": 0, "first_token_ms": None,
        "prompt_tokens": None, "completion_tokens": 0, "finish_reason": None,
        "tools_offered": len(tools or []), "tool_calls": [],
        "prompt_sha256": _sha256(messages), "response_sha256": None, "error": None, "ok": False}
    records.append(record)
    started = time.perf_counter()
    parts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    chunks = 0
    try:
        async with asyncio.timeout(settings.timeout_s):
            stream = await _create(session, request, record)
            try:
                async for chunk in stream:
                    chunks += 1
                    if chunk.usage is not None:
                        record["prompt_tokens"] = chunk.usage.prompt_tokens
                        record["completion_tokens"] = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            record["finish_reason"] = choice.finish_reason
                        delta = choice.delta
                        if delta is None:
                            continue
                        if delta.content:
                            if record["first_token_ms"] is None:
                                record["first_token_ms"] = _ms_since(started)
                            parts.append(delta.content)
                            on_token(delta.content)
                        for piece in delta.tool_calls or []:
                            slot = calls.setdefault(piece.index or 0,
                                                    {"id": "", "name": "", "arguments": ""})
                            slot["id"] = piece.id or slot["id"]
                            if piece.function is not None:
                                slot["name"] = piece.function.name or slot["name"]
                                slot["arguments"] += piece.function.arguments or ""
                    if chunks > max_tokens * _RUNAWAY_FACTOR + _RUNAWAY_SLACK:
                        raise ChatFailure(f"the model kept writing past max_tokens "
                                          f"({max_tokens}); cut off", "LLM_RUNAWAY")
            finally:
                await stream.close()  # the server sees the client go and stops generating
    except ChatFailure as exc:
        record["error"] = exc.detail
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of the call becomes its reason
        record["error"] = describe_error(exc, settings.timeout_s)
        timed_out = isinstance(exc, TimeoutError | openai.APITimeoutError)
        raise ChatFailure(record["error"], "LLM_TIMEOUT" if timed_out else "LLM_FAILED") \
            from exc
    finally:
        record["latency_ms"] = _ms_since(started)
    text = "".join(parts)
    record["completion_tokens"] = record["completion_tokens"] or chunks
    record["response_sha256"] = _sha256({"text": text, "tool_calls": list(calls.values())})
    record["ok"] = True
    tool_calls = [ToolCall(slot["id"] or f"call_{secrets.token_hex(4)}", slot["name"],
                           slot["arguments"]) for _, slot in sorted(calls.items())]
    return ModelReply(text, tool_calls, record)


async def _create(session: LLMSession, request: dict[str, Any], record: dict[str, Any]
                  ) -> Any:
    """The streamed completion, asked again without what the server refuses: usage reports
    (`stream_options`), or tools (vLLM without a tool parser, llama-server without --jinja
    answer HTTP 400 naming them); `record["tools_refused"]` then says so."""
    while True:
        try:
            return await session.client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            message = str(exc).lower()
            if "stream_options" in message and "stream_options" in request:
                del request["stream_options"]
            elif "tool" in message and "tools" in request and exc.status_code in (400, 422):
                del request["tools"]
                record["tools_offered"], record["tools_refused"] = 0, True
            else:
                raise


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class ChatModels:
    """Where the chat's model is: the configured endpoint, else the embedded LLM, started once
    for the product (or the one `kantoku up` runs) and stopped with it."""

    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._embedded: Endpoint | None = None
        self._lock = asyncio.Lock()

    async def endpoint(self) -> tuple[Endpoint, LLMSettings, str]:
        """(endpoint, settings, "configured" or "embedded")."""
        settings = llm_settings()
        if llm_configured(settings):
            key = settings.api_key.get_secret_value() if settings.api_key else ""
            return Endpoint(settings.base_url, settings.model, key), settings, "configured"
        async with self._lock:
            if self._embedded is None:
                from kantoku.services.llm.hosting import embedded_endpoint

                hosted = await self._stack.enter_async_context(embedded_endpoint())
                self._embedded = Endpoint(hosted.base_url, settings.model or hosted.model,
                                          embedded=True)
        return self._embedded, settings, "embedded"

    async def close(self) -> None:
        async with self._lock:
            self._embedded = None
            await self._stack.aclose()
