"""A scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, streamed answers.

Each chat completion is answered by the next step of a script (the last step repeats): a text
(streamed a few characters per event, as servers stream tokens), tool calls (streamed as OpenAI
streams them: each call's id and name first, then its arguments in pieces), an HTTP error, or an
answer that never ends (it streams until the client hangs up, and records that it did).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Text:
    content: str
    finish_reason: str = "stop"
    #: Seconds between streamed pieces (a model writing at its own pace); 0: all at once.
    every_s: float = 0.0


@dataclass(frozen=True)
class Call:
    """One tool call; a dict of arguments is sent as JSON, a string as it is (bad JSON too)."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else \
            json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class ToolCalls:
    """An answer that calls tools (after `content`, when there is any)."""

    calls: tuple[Call, ...]
    content: str = ""


def calls(*called: Call, content: str = "") -> ToolCalls:
    return ToolCalls(tuple(called), content)


@dataclass(frozen=True)
class Error:
    status: int
    message: str


@dataclass(frozen=True)
class Endless:
    """Streams "aaaa…" every `every_s` seconds, ignoring max_tokens, until the client goes."""

    every_s: float = 0.01


Answer = Text | ToolCalls | Error | Endless
Step = Answer | Callable[[dict[str, Any]], Answer]


@dataclass
class ScriptedLLM:
    port: int
    models: list[str] = field(default_factory=lambda: ["scripted-1"])
    script: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Set when a client hung up on an endless answer.
    hung_up: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "test",
                "KANTOKU_LLM_MODEL": self.models[0]}

    def next_step(self, body: dict[str, Any]) -> Answer:
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(body) if callable(step) else step

    def chats(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]


def _handler(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "owned_by": "test"} for m in llm.models]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            llm.requests.append(body)
            step = llm.next_step(body)
            if isinstance(step, Error):
                self._json(step.status, {"error": {"message": step.message,
                                                   "type": "invalid_request_error"}})
            elif not body.get("stream"):
                text = step.content if isinstance(step, Text | ToolCalls) else ""
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if isinstance(step, ToolCalls):
                    message["tool_calls"] = [
                        {"id": f"call_{i}", "type": "function",
                         "function": {"name": c.name, "arguments": c.text}}
                        for i, c in enumerate(step.calls)]
                self._json(200, {"id": "c", "object": "chat.completion", "created": 0,
                                 "model": body.get("model", "m"), "choices": [{
                                     "index": 0, "message": message, "finish_reason":
                                     "tool_calls" if isinstance(step, ToolCalls) else "stop"}]})
            else:
                self._stream(body, step)

        def _stream(self, body: dict[str, Any], step: Text | ToolCalls | Endless) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            model = body.get("model", "m")
            try:
                if isinstance(step, Endless):
                    while True:
                        self._event(_chunk(model, "aaaa"))
                        time.sleep(step.every_s)
                pieces = [step.content[i:i + 4] for i in range(0, len(step.content), 4)]
                for piece in pieces:
                    self._event(_chunk(model, piece))
                    if isinstance(step, Text) and step.every_s:
                        time.sleep(step.every_s)
                finish = step.finish_reason if isinstance(step, Text) else "tool_calls"
                if isinstance(step, ToolCalls):
                    for index, call in enumerate(step.calls):
                        self._event(_calling(model, {
                            "index": index, "id": f"call_{index}", "type": "function",
                            "function": {"name": call.name, "arguments": ""}}))
                        text = call.text
                        for start in range(0, len(text), 8):
                            pieces.append(text[start:start + 8])
                            self._event(_calling(model, {"index": index, "function": {
                                "arguments": text[start:start + 8]}}))
                self._event(_chunk(model, None, finish))
                if body.get("stream_options", {}).get("include_usage"):
                    self._event({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                 "model": model, "choices": [], "usage": {
                                     "prompt_tokens": 100, "completion_tokens": len(pieces),
                                     "total_tokens": 100 + len(pieces)}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except OSError:
                llm.hung_up.set()
            self.close_connection = True

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def _chunk(model: str, content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _calling(model: str, call: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


def asked(body: dict[str, Any]) -> list[str]:
    """The shot ids a planner's request asks about (its last message lists them)."""
    return re.findall(r"^(s\d{3}):", body["messages"][-1]["content"], flags=re.MULTILINE)


def answering(make: Callable[[str, int], dict[str, Any]]) -> Callable[[dict[str, Any]], Text]:
    """A step answering each shot a planner asks about with `make(shot_id, position)`."""
    def step(body: dict[str, Any]) -> Text:
        return Text(json.dumps({"shots": [make(s, i) for i, s in enumerate(asked(body))]}))
    return step


@contextmanager
def scripted_llm(*script: Step, models: list[str] | None = None) -> Iterator[ScriptedLLM]:
    """A running scripted server on a free 127.0.0.1 port, stopped on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    llm = ScriptedLLM(port=server.server_address[1], script=list(script))
    if models is not None:
        llm.models = models
    server.RequestHandlerClass = _handler(llm)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield llm
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
