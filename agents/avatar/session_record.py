"""A conversation's record in the rights ledger: the persona and its rights when it starts,
then every turn's steps (ASR, LLM, TTS, motion) with their models, licences and timings.

Entries are written in order by one background task, so a turn never waits for SQLite. The
person's audio is not kept: the ASR step records its digest, and the audio itself only when
the persona's `store_audio` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from kantoku.agents.avatar.persona import Persona
from kantoku.planner.rights.ledger import Ledger

log = logging.getLogger(__name__)


def job_id_of(session_id: str) -> str:
    return f"avatar-{session_id}"


class SessionRecord:
    def __init__(self, ledger: Ledger, session_id: str) -> None:
        self.ledger, self.job_id = ledger, job_id_of(session_id)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"ledger {self.job_id}")

    def started(self, persona: Persona, models: dict[str, str], language: str) -> None:
        self.add("session", data={"persona": persona.id, "name": persona.name,
                                  "language": language, "voice_id": persona.voice_id,
                                  "rights": persona.rights.model_dump(),
                                  "store_audio": persona.store_audio, "models": models})

    def step(self, kind: str, turn: int, provenance: Message | None = None,
             **data: Any) -> None:
        """One service step of `turn`: its ProvenanceRecord (model, weights, licence, timings)
        and any other facts."""
        record = (json_format.MessageToDict(provenance, preserving_proto_field_name=True)
                  if provenance is not None else None)
        self.add(kind, record=record, data={"turn": turn, **data})

    def add(self, kind: str, *, record: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None) -> None:
        self._queue.put_nowait((kind, {"record": record, "data": data}))

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def _write(self) -> None:
        while (item := await self._queue.get()) is not None:
            kind, fields = item
            try:
                await self.ledger.append_async(self.job_id, kind, shot_id=None, **fields)
            except Exception:  # noqa: BLE001 - a ledger failure must not end the conversation
                log.exception("ledger: could not record the %s step of %s", kind, self.job_id)


class HeldRecord:
    """A speculative turn's entries, kept back until the turn is confirmed (`release`: written
    in order) or forgotten (`drop`): the ledger records only turns that happened."""

    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self._held: list[Callable[[], None]] = []
        self.released = False

    def step(self, kind: str, turn: int, provenance: Message | None = None,
             **data: Any) -> None:
        self._do(functools.partial(self.record.step, kind, turn, provenance, **data))

    def add(self, kind: str, *, record: dict[str, Any] | None = None,
            data: dict[str, Any] | None = None) -> None:
        self._do(functools.partial(self.record.add, kind, record=record, data=data))

    def later(self, write: Callable[[], None]) -> None:
        """Run `write` (which records something) now if released, else on release."""
        self._do(write)

    def release(self) -> None:
        self.released = True
        for write in self._held:
            write()
        self._held.clear()

    def drop(self) -> None:
        self._held.clear()

    def _do(self, write: Callable[[], None]) -> None:
        if self.released:
            write()
        else:
            self._held.append(write)
