"""A protocol-level client of `kantoku avatar` for tests and benchmarks: it speaks the
WebSocket protocol v1 (docs/avatar-protocol.md) the way a page would, keeps every event with
the time it arrived, and pairs each `audio` header with its binary frame."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Event = dict[str, Any]


@contextlib.asynccontextmanager
async def _timeout(seconds: float, describe: Callable[[], str]) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"after {seconds} s: {describe()}") from None


class AvatarClient:
    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.url, self.token = url, token
        self.events: list[Event] = []
        self.closed: asyncio.Event = asyncio.Event()
        self.close_code: int | None = None
        self._arrived: asyncio.Condition = asyncio.Condition()
        self._socket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AvatarClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._socket = await websockets.connect(self.url, additional_headers=headers,
                                                max_size=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    @property
    def socket(self) -> ClientConnection:
        assert self._socket is not None
        return self._socket

    # -- sending -------------------------------------------------------------------------

    async def send(self, message: dict[str, Any] | str | bytes) -> float:
        """Send a message (a dict as JSON); returns time.perf_counter() after it left."""
        await self.socket.send(json.dumps(message) if isinstance(message, dict) else message)
        return time.perf_counter()

    async def start(self, persona: str = "", language: str = "",
                    sample_rate_hz: int = 16000) -> Event:
        await self.send({"type": "start", "protocol": 1, "persona": persona,
                         "language": language, "sample_rate_hz": sample_rate_hz})
        return await self.wait_for("ready")

    async def say(self, text: str) -> float:
        return await self.send({"type": "text", "text": text})

    async def stream_audio(self, pcm: bytes, sample_rate_hz: int = 16000, frame_ms: int = 32,
                           speed: float = 1.0, on_frame: Callable[[int, float], None] | None
                           = None) -> None:
        """Send PCM16 in frames of `frame_ms`, paced at `speed` times real time;
        `on_frame(byte_offset, sent_at)` after each."""
        step = 2 * sample_rate_hz * frame_ms // 1000
        started = time.perf_counter()
        for offset in range(0, len(pcm), step):
            due = started + (offset / 2 / sample_rate_hz) / speed
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            try:
                sent = await self.send(pcm[offset:offset + step])
            except websockets.ConnectionClosed:
                return  # the server closed (tests check why)
            if on_frame is not None:
                on_frame(offset, sent)

    # -- receiving -----------------------------------------------------------------------

    async def _read(self) -> None:
        pending_audio: Event | None = None
        try:
            async for message in self.socket:
                at = time.perf_counter()
                if isinstance(message, bytes):
                    event: Event = pending_audio if pending_audio is not None else {
                        "type": "_stray_binary"}
                    event["_pcm"] = message
                    pending_audio = None
                    if event["type"] == "_stray_binary":
                        await self._add(event, at)
                    continue
                event = json.loads(message)
                if event.get("type") == "audio":
                    pending_audio = event
                await self._add(event, at)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.socket.close_code
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def _add(self, event: Event, at: float) -> None:
        event["_at"] = at
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    async def wait_for(self, kind: str, *, turn: int | None = None, timeout: float = 60.0,
                       after: int = 0, where: Callable[[Event], bool] | None = None) -> Event:
        """The first event of type `kind` (of `turn`, at index >= `after`) that `where`
        accepts, waiting for it; an `error` event of another kind fails the wait."""
        def found() -> Event | None:
            for event in self.events[after:]:
                if event["type"] == kind and (turn is None or event.get("turn") == turn) and \
                        (where is None or where(event)):
                    return event
                if event["type"] == "error" and kind != "error" and event.get("fatal"):
                    raise AssertionError(f"waiting for {kind}: {event}")
            return None

        async with _timeout(timeout, lambda: f"{kind} (turn {turn}) not received; got "
                            f"{self.kinds()[after:]}; errors: {self.of('error')}"), \
                self._arrived:
            while (event := found()) is None:
                if self.closed.is_set():
                    raise AssertionError(f"closed ({self.close_code}) while waiting for "
                                         f"{kind}; got {self.kinds()}")
                await self._arrived.wait()
        return event

    def of(self, kind: str, turn: int | None = None) -> list[Event]:
        return [e for e in self.events
                if e["type"] == kind and (turn is None or e.get("turn") == turn)]

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    def audio(self, turn: int) -> bytes:
        return b"".join(e.get("_pcm", b"") for e in self.of("audio", turn))
