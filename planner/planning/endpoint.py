"""Talking to an OpenAI-compatible chat-completions endpoint: bounded, streamed, honest calls.

- Every answer is streamed, so progress (tokens so far) shows while it is written, and a call
  that times out or is cancelled closes its connection: the server sees the client go and
  stops generating instead of working on for nobody.
- `max_tokens` is always sent (sized by the caller to the answer expected) and enforced here
  too: a server that ignores it is cut off.
- No blind retries: a timeout is not retried, and a refusal of the response format (any HTTP
  status whose message names the format) moves to the next format at once. Only connection
  failures and HTTP 429 are retried, `KANTOKU_LLM_MAX_RETRIES` times.
- The format an endpoint accepted is remembered per (endpoint, model) for the process.
- `/v1/models` is read first: a model the server does not have is named with the ones it has.

Output formats, most to least constrained:

1. ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, llama.cpp);
2. ``{"type": "json_object", "schema": ...}`` (llama.cpp's older servers take a schema here);
3. no ``response_format``; the JSON is taken from the prose.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["json_schema", "json_object", "none"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "none")

#: Words in an HTTP error that say the response format was refused.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")
_RETRY_STATUSES = {429}
#: A server that ignores max_tokens is cut off this far past it.
_RUNAWAY_FACTOR, _RUNAWAY_SLACK = 1.25, 32
#: The embedded model plans best close to greedy (its server's default is 0.8).
EMBEDDED_TEMPERATURE = 0.2
#: Progress is reported at most this often while an answer streams.
_PROGRESS_EVERY_S = 0.25

#: (base URL, model) → index into MODES of the format that endpoint accepted.
_NEGOTIATED: dict[tuple[str, str], int] = {}
#: (base URL, model) of endpoints that refused ``stream_options``.
_NO_STREAM_OPTIONS: set[tuple[str, str]] = set()


class LLMSettings(BaseSettings):
    """Which OpenAI-compatible endpoint plans, and how far a call may go (the environment).

    With neither OPENAI_BASE_URL nor OPENAI_API_KEY set, kantoku uses its embedded LLM (the one
    `kantoku up` started, or one started for the job).
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL",
                                 description="e.g. http://127.0.0.1:8080/v1 for llama.cpp")
    api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    model: str | None = Field(default=None, validation_alias="KANTOKU_LLM_MODEL",
                              description="default: the server's only model")
    timeout_s: float = Field(default=30.0, gt=0, le=600, validation_alias="KANTOKU_LLM_TIMEOUT_S",
                             description="wall-clock limit of one call, connection to last token")
    max_tokens: int | None = Field(default=None, ge=16, le=32768,
                                   validation_alias="KANTOKU_LLM_MAX_TOKENS",
                                   description="cap on one answer; default: sized to the answer")
    temperature: float | None = Field(default=None, ge=0, le=2,
                                      validation_alias="KANTOKU_LLM_TEMPERATURE",
                                      description="sent only when set (some models reject any)")
    max_retries: int = Field(default=1, ge=0, le=5, validation_alias="KANTOKU_LLM_MAX_RETRIES",
                             description="retries of connection failures and HTTP 429 only")
    batch_shots: int = Field(default=8, ge=1, le=120, validation_alias="KANTOKU_LLM_BATCH_SHOTS",
                             description="shots asked about per call")
    detail: Literal["full", "compact"] | None = Field(
        default=None, validation_alias="KANTOKU_LLM_DETAIL",
        description="full: every shot field; compact: who, lines and what it shows (the rules "
                    "frame it); default: compact for the embedded model, else full")


def llm_settings() -> LLMSettings:
    """Current settings, read fresh from the environment."""
    return LLMSettings()


def llm_configured(settings: LLMSettings | None = None) -> bool:
    """True when an external endpoint is set (a base URL or an API key)."""
    settings = settings or llm_settings()
    return bool(settings.base_url or settings.api_key)


class LLMFailure(Exception):
    """The endpoint could not be used (timeout, connection, HTTP error); the message says why."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Endpoint:
    """Where to send chat completions: a base URL (None: OpenAI's), its key, and the model."""

    base_url: str | None
    model: str | None
    api_key: str = ""
    #: The embedded LLM (registered in the model registry), not a user's endpoint.
    embedded: bool = False


@asynccontextmanager
async def open_endpoint(settings: LLMSettings) -> AsyncIterator[Endpoint]:
    """The configured endpoint, or the embedded LLM (started for the block when not running)."""
    if llm_configured(settings):
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        yield Endpoint(settings.base_url, settings.model, key)
        return
    from kantoku.services.llm.hosting import embedded_endpoint

    async with embedded_endpoint() as embedded:
        yield Endpoint(embedded.base_url, settings.model or embedded.model, embedded=True)


@dataclass
class Answer:
    text: str
    finish_reason: str | None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _names_format(exc: openai.APIStatusError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _FORMAT_WORDS)


def describe_error(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return f"the LLM did not finish within its timeout ({timeout_s:g} s)"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return f"could not connect to the LLM ({type(cause).__name__}: {shorten(str(cause))})"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM server answered HTTP {exc.status_code} ({shorten(str(exc))})"
    return f"the LLM call failed ({type(exc).__name__}: {shorten(str(exc))})"


class _Runaway(Exception):
    pass


Progress = Callable[[dict[str, Any]], None]


@dataclass
class LLMSession:
    """One planning conversation with one endpoint: its client, model and ledger of calls."""

    endpoint: Endpoint
    settings: LLMSettings
    on_progress: Progress = lambda event: None
    calls: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    client: AsyncOpenAI = field(init=False)

    def __post_init__(self) -> None:
        # The SDK's own retries are off: they retry timeouts, and a retried timeout only queues
        # behind the abandoned request on a single-slot server.
        self.client = AsyncOpenAI(base_url=self.endpoint.base_url,
                                  api_key=self.endpoint.api_key or "no-key",
                                  timeout=self.settings.timeout_s, max_retries=0)
        self.model = self.endpoint.model or ""

    @property
    def host(self) -> str:
        url = self.client.base_url
        return f"{url.host}:{url.port}" if url.port else str(url.host)

    @property
    def _key(self) -> tuple[str, str]:
        return str(self.client.base_url), self.model

    async def close(self) -> None:
        await self.client.close()

    async def check_model(self) -> str:
        """The model to use, checked against the server's `/v1/models`.

        Raises:
            LLMFailure: the server is unreachable, has no such model, or (no model set) has
                several and none was chosen.
        """
        try:
            async with asyncio.timeout(min(self.settings.timeout_s, 10.0)):
                listed = [m.id async for m in self.client.models.list()]
        except openai.NotFoundError:
            listed = []  # an endpoint without /models: the model is taken on trust
        except Exception as exc:  # noqa: BLE001 - any failure becomes a fallback reason
            raise LLMFailure(describe_error(exc, min(self.settings.timeout_s, 10.0)),
                             timed_out=isinstance(exc, TimeoutError)) from exc
        where = f"the LLM server at {self.host}"
        if not self.model:
            if len(listed) == 1:
                self.model = listed[0]
            else:
                raise LLMFailure(f"no LLM model chosen and {where} has "
                                 f"{', '.join(listed[:10]) or 'none listed'}; set "
                                 "KANTOKU_LLM_MODEL")
        elif listed and self.model not in listed:
            raise LLMFailure(f"{where} has no model {self.model!r} (it has: "
                             f"{', '.join(listed[:10])}); set KANTOKU_LLM_MODEL to one of them")
        return self.model

    async def ask(self, messages: list[dict[str, str]], schema: dict[str, Any], *,
                  max_tokens: int, purpose: str) -> Answer:
        """The streamed answer to `messages`, trying response formats until one is accepted.

        Raises:
            LLMFailure: a timeout, connection or HTTP error, or every format refused.
        """
        max_tokens = min(max_tokens, self.settings.max_tokens or max_tokens)
        index = _NEGOTIATED.get(self._key, 0)
        attempt = 0
        while True:
            attempt += 1
            mode = MODES[index]
            try:
                answer = await self._call(messages, schema, mode, max_tokens, purpose, attempt)
            except openai.APIStatusError as exc:
                if "stream_options" in str(exc).lower() and self._key not in _NO_STREAM_OPTIONS:
                    _NO_STREAM_OPTIONS.add(self._key)
                    continue
                if index + 1 < len(MODES) and _names_format(exc):
                    index += 1
                    continue
                if exc.status_code in _RETRY_STATUSES and attempt <= self.settings.max_retries:
                    await asyncio.sleep(min(2.0 ** attempt, 10.0))
                    continue
                raise LLMFailure(describe_error(exc, self.settings.timeout_s)) from exc
            except openai.APIConnectionError as exc:
                if not isinstance(exc, openai.APITimeoutError) and \
                        attempt <= self.settings.max_retries:
                    await asyncio.sleep(0.5)
                    continue
                raise LLMFailure(describe_error(exc, self.settings.timeout_s),
                                 timed_out=isinstance(exc, openai.APITimeoutError)) from exc
            except _Runaway as exc:
                raise LLMFailure(f"the LLM kept writing past max_tokens ({max_tokens}); cut "
                                 "off") from exc
            except TimeoutError as exc:
                raise LLMFailure(describe_error(exc, self.settings.timeout_s),
                                 timed_out=True) from exc
            except Exception as exc:  # noqa: BLE001 - anything else is a failed call too
                raise LLMFailure(describe_error(exc, self.settings.timeout_s)) from exc
            _NEGOTIATED[self._key] = index
            return answer

    async def _call(self, messages: list[dict[str, str]], schema: dict[str, Any], mode: Mode,
                    max_tokens: int, purpose: str, attempt: int) -> Answer:
        record: dict[str, Any] = {
            "model": self.model, "base_url_host": self.host, "purpose": purpose,
            "response_format": mode, "attempt": attempt, "max_tokens": max_tokens,
            "timeout_s": self.settings.timeout_s, "latency_ms": 0, "first_token_ms": None,
            "completion_tokens": 0, "prompt_tokens": None,
            "prompt_sha256": _sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True)),
            "response_sha256": None, "finish_reason": None, "error": None, "ok": False}
        self.calls.append(record)
        started = time.perf_counter()
        parts: list[str] = []
        stream = None
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                stream = await self.client.chat.completions.create(
                    **self._request(messages, schema, mode, max_tokens))
                last_report = 0.0
                async for chunk in stream:
                    if chunk.usage is not None:
                        record["prompt_tokens"] = chunk.usage.prompt_tokens
                        record["completion_tokens"] = chunk.usage.completion_tokens
                    for choice in chunk.choices:
                        if choice.delta.content:
                            if record["first_token_ms"] is None:
                                record["first_token_ms"] = _ms_since(started)
                            parts.append(choice.delta.content)
                        if choice.finish_reason:
                            record["finish_reason"] = choice.finish_reason
                    if len(parts) > max_tokens * _RUNAWAY_FACTOR + _RUNAWAY_SLACK:
                        raise _Runaway
                    now = time.perf_counter()
                    if now - last_report >= _PROGRESS_EVERY_S:
                        last_report = now
                        self.on_progress({"event": "llm_progress", "purpose": purpose,
                                          "tokens": len(parts), "max_tokens": max_tokens})
        except BaseException as exc:
            record["error"] = "cut off: kept writing past max_tokens" \
                if isinstance(exc, _Runaway) else describe_error(exc, self.settings.timeout_s)
            raise
        finally:
            if stream is not None:
                await stream.close()  # closes the connection: the server stops generating
            record["latency_ms"] = _ms_since(started)
        text = "".join(parts)
        record["completion_tokens"] = record["completion_tokens"] or len(parts)
        record["response_sha256"] = _sha256(text)
        self.on_progress({"event": "llm_progress", "purpose": purpose, "tokens": len(parts),
                          "max_tokens": max_tokens, "done": True})
        return Answer(text, record["finish_reason"])

    def _request(self, messages: list[dict[str, str]], schema: dict[str, Any], mode: Mode,
                 max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True,
                                   "max_tokens": max_tokens}
        if self._key not in _NO_STREAM_OPTIONS:
            request["stream_options"] = {"include_usage": True}
        if mode == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "shot_ideas", "schema": schema, "strict": False}}
        elif mode == "json_object":
            request["response_format"] = {"type": "json_object", "schema": schema}
        temperature = self.settings.temperature
        if temperature is None and self.endpoint.embedded:
            temperature = EMBEDDED_TEMPERATURE
        if temperature is not None:
            request["temperature"] = temperature
        return request

    def judge(self, ok: bool, problems: list[str]) -> None:
        """Record on the latest call whether its answer was usable, and if not, why."""
        record = self.calls[-1]
        record["ok"] = ok
        if not ok and record["error"] is None:
            record["error"] = "unusable answer: " + "; ".join(problems[:3])


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
