"""Everything a session sends goes through one writer, in order; an `audio` header and its
binary frame leave together. An interruption overtakes the queue: the interrupted turn's
unsent events are dropped and the `interrupted` event goes out next. A speculative turn writes
to a HeldOutbox, which keeps everything back until the turn is confirmed."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

SendText = Callable[[str], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]


@dataclass
class Outgoing:
    event: dict[str, Any]
    audio: bytes | None = None
    #: Called with time.perf_counter() once the event (and its audio) is written.
    on_sent: Callable[[float], None] | None = None
    turn: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.turn = self.event.get("turn")


class Outbox:
    def __init__(self, send_text: SendText, send_bytes: SendBytes) -> None:
        self._send_text, self._send_bytes = send_text, send_bytes
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, event: dict[str, Any], audio: bytes | None = None,
            on_sent: Callable[[float], None] | None = None) -> None:
        if not self.closed:
            self._queue.append(Outgoing(event, audio, on_sent))
            self._ready.set()

    def overtake(self, turn: int, event: dict[str, Any],
                 on_sent: Callable[[float], None] | None = None) -> None:
        """Drop `turn`'s unsent events and send `event` before anything else."""
        kept = [item for item in self._queue if item.turn != turn]
        self._queue.clear()
        self._queue.extend(kept)
        if not self.closed:
            self._queue.appendleft(Outgoing(event, None, on_sent))
            self._ready.set()

    async def drain(self) -> None:
        """Wait until everything put so far has been written."""
        while self._queue and not self.closed:
            await asyncio.sleep(0.005)

    async def released(self) -> None:
        """Return once what is put here goes to the socket (at once: nothing is held)."""

    async def run(self) -> None:
        """The writer: sends until the socket fails or the task is cancelled."""
        try:
            while True:
                await self._ready.wait()
                while self._queue:
                    item = self._queue.popleft()
                    await self._send_text(json.dumps(item.event, ensure_ascii=False))
                    if item.audio is not None:
                        await self._send_bytes(item.audio)
                    if item.on_sent is not None:
                        item.on_sent(time.perf_counter())
                self._ready.clear()
        finally:
            self.closed = True
            self._queue.clear()


class HeldOutbox:
    """What a speculative turn sends, held back in order until the turn is confirmed
    (`release`: it all goes into the session's Outbox at once, and later events straight on)
    or forgotten (`drop`: none of it is ever sent)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._held: list[Outgoing] = []
        self._released = asyncio.Event()
        self._dropped = False

    @property
    def is_released(self) -> bool:
        return self._released.is_set()

    def put(self, event: dict[str, Any], audio: bytes | None = None,
            on_sent: Callable[[float], None] | None = None) -> None:
        if self._released.is_set():
            self.outbox.put(event, audio, on_sent)
        elif not self._dropped:
            self._held.append(Outgoing(event, audio, on_sent))

    def release(self) -> None:
        for item in self._held:
            self.outbox.put(item.event, item.audio, item.on_sent)
        self._held.clear()
        self._released.set()

    def drop(self) -> None:
        self._held.clear()
        self._dropped = True

    async def released(self) -> None:
        """Wait until the turn is confirmed (forever, for a dropped one: it is cancelled)."""
        await self._released.wait()

    async def drain(self) -> None:
        await self._released.wait()
        await self.outbox.drain()
