"""One reply of the character, as three stages joined by queues:

    think  (persona LLM, streamed)  --sentences-->  speak (TTS stream, then motion, per
    sentence)  --speech-->  play (paced onto the socket on the reply clock)

The whole reply is one task: an interruption cancels it, which cancels the LLM stream and the
TTS call in flight, and the session sends `interrupted` ahead of anything still queued.

A speculative reply (started before the VAD's end of turn) writes to a HeldOutbox and a
HeldRecord: it thinks and speaks ahead, and plays nothing until the turn is confirmed.

The reply clock starts (0 ms) with the first sample of the reply's audio, when it is sent.
Audio goes out at most `LEAD_MS` ahead of that clock, so an interruption wastes little, and a
sentence whose audio is late starts when it arrives rather than in the past.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from kantoku.agents.avatar.chunking import SentenceChunker
from kantoku.agents.avatar.dialogue import SpokenSentence, SpokenWord
from kantoku.agents.avatar.outbox import HeldOutbox, Outbox
from kantoku.agents.avatar.persona import Persona
from kantoku.agents.avatar.session_record import HeldRecord, SessionRecord
from kantoku.agents.avatar.turn_metrics import TurnMetrics, ms_since
from kantoku.agents.llm_chat import (
    EMBEDDED_MAX_TOKENS,
    REPLY_MAX_TOKENS,
    ChatFailure,
    stream_reply,
)
from kantoku.planner.planning.endpoint import LLMSession
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.rpc import error_from_rpc
from kantoku.v1 import common_pb2, motion_pb2, tts_pb2

#: Audio is sent at most this far ahead of the reply clock.
LEAD_MS = 800.0
#: Silence between two sentences of a reply.
SENTENCE_GAP_MS = 150.0
#: A late sentence starts this far after the moment it arrives (time to reach the client).
LATE_MARGIN_MS = 60.0
VISEME_FPS = 30
GESTURES = {motion_pb2.GESTURE_TYPE_BLINK: "blink", motion_pb2.GESTURE_TYPE_HEAD_NOD: "nod"}


@dataclass
class ReplyContext:
    """What a reply needs from its session."""

    client: ServiceClient
    persona: Persona
    language: str
    llm: LLMSession
    llm_kind: str
    outbox: Outbox | HeldOutbox
    record: SessionRecord | HeldRecord


@dataclass
class _Audio:
    sentence: int
    text: str
    start_ms: float  # from the start of the sentence
    duration_ms: float
    pcm: bytes
    sample_rate_hz: int
    words: list[SpokenWord]


@dataclass
class _Motion:
    sentence: int
    response: motion_pb2.AnimateSpeechResponse


_Speech = _Audio | _Motion


@dataclass
class ReplyFailure(Exception):
    """A stage could not go on: the client gets a non-fatal `error` and the turn ends."""

    code: str
    message: str


@dataclass
class Reply:
    number: int
    messages: list[dict[str, Any]]
    metrics: TurnMetrics
    ctx: ReplyContext
    text_parts: list[str] = field(default_factory=list)
    sentences: list[SpokenSentence] = field(default_factory=list)
    #: time.perf_counter() of the reply clock's 0 ms (the first audio sent); None before.
    clock_zero: float | None = None
    audio_end_ms: float = 0.0
    #: How far the client said it had played (the `playback` message), and when it said so
    #: (time.perf_counter()); None: not reported.
    played_ms: float | None = None
    played_at: float = 0.0
    llm_records: list[dict[str, Any]] = field(default_factory=list)
    _seq: int = 0

    # -- the clock -----------------------------------------------------------------------

    def clock_ms(self) -> float:
        """Now on the reply clock (0 before the first audio is sent)."""
        return 0.0 if self.clock_zero is None else ms_since(self.clock_zero)

    def report_playback(self, played_ms: float) -> None:
        self.played_ms, self.played_at = played_ms, time.perf_counter()

    def heard_ms(self) -> float:
        """How much of the reply the person has heard: the client's last report carried on by
        the time since (playback goes on between reports), else the reply clock; never past
        the audio sent."""
        heard = self.clock_ms() if self.played_ms is None else \
            self.played_ms + ms_since(self.played_at)
        return round(min(heard, self.audio_end_ms), 1)

    @property
    def text(self) -> str:
        return "".join(self.text_parts).strip()

    # -- the stages ----------------------------------------------------------------------

    async def run(self) -> None:
        """Think, speak and play; then `reply_done` and the turn's metrics; then wait until
        the client has played the audio (the character is still talking until then).

        Raises:
            ReplyFailure: the LLM, TTS or motion step failed.
        """
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        speech: asyncio.Queue[_Speech | None] = asyncio.Queue()
        try:
            async with asyncio.TaskGroup() as stages:
                stages.create_task(self.think(sentences), name=f"think {self.number}")
                stages.create_task(self.speak(sentences, speech), name=f"speak {self.number}")
                stages.create_task(self.play(speech), name=f"play {self.number}")
        except* ReplyFailure as group:
            raise group.exceptions[0] from None
        self.metrics.mark("reply_done")
        self.ctx.outbox.put({"type": "reply_done", "turn": self.number, "text": self.text,
                             "audio_ms": round(self.audio_end_ms, 1)})
        await self.ctx.outbox.drain()  # the marks of what was written are all in
        self.ctx.outbox.put(self.metrics.event())
        self.ctx.record.add("turn", data=self.metrics.event())
        await self.played()

    async def played(self) -> None:
        """Wait until the client has played the reply's audio: by the reply clock, or by its
        playback reports when it sends them (within 2 s of the clock: reports may stop)."""
        while (left := self.audio_end_ms - self.clock_ms()) > 0:
            await asyncio.sleep(left / 1000)
        while self.played_ms is not None and self.heard_ms() < self.audio_end_ms - 1 and \
                self.clock_ms() < self.audio_end_ms + 2000:
            await asyncio.sleep(0.05)

    async def think(self, sentences: asyncio.Queue[str | None]) -> None:
        chunker = SentenceChunker()
        started = time.perf_counter()

        def on_token(piece: str) -> None:
            if "first_token" not in self.metrics.marks:
                self.metrics.step("llm_first_token_ms", ms_since(started))
            self.metrics.mark("first_token")
            self.text_parts.append(piece)
            self.ctx.outbox.put({"type": "reply_text", "turn": self.number, "delta": piece})
            for sentence in chunker.feed(piece):
                self.metrics.mark("first_sentence")
                sentences.put_nowait(sentence)

        max_tokens = EMBEDDED_MAX_TOKENS if self.ctx.llm_kind == "embedded" else REPLY_MAX_TOKENS
        try:
            await stream_reply(self.ctx.llm, self.messages, None, endpoint=self.ctx.llm_kind,
                               max_tokens=max_tokens, on_token=on_token,
                               records=self.llm_records)
        except ChatFailure as exc:
            raise ReplyFailure(exc.reason, f"the persona's LLM failed: {exc.detail}") from None
        finally:
            for record in self.llm_records:
                self.ctx.record.add("llm_call", data={"turn": self.number, **record})
            self.metrics.step("llm_ms", ms_since(started))
        for sentence in chunker.flush():
            self.metrics.mark("first_sentence")
            sentences.put_nowait(sentence)
        sentences.put_nowait(None)

    async def speak(self, sentences: asyncio.Queue[str | None],
                    speech: asyncio.Queue[_Speech | None]) -> None:
        index = 0
        while (text := await sentences.get()) is not None:
            started = time.perf_counter()
            chunks: list[tts_pb2.AudioChunk] = []
            provenance: common_pb2.ProvenanceRecord | None = None
            sample_rate_hz = 0
            async for response in self._synthesize(text):
                kind = response.WhichOneof("content")
                if kind == "header":
                    sample_rate_hz = response.header.sample_rate_hz
                elif kind == "chunk":
                    chunk = response.chunk
                    self.metrics.step("tts_first_audio_ms", ms_since(started))
                    chunks.append(chunk)
                    speech.put_nowait(_Audio(
                        index, chunk.text or text, chunk.start_s * 1000,
                        chunk.duration_s * 1000, chunk.audio, sample_rate_hz,
                        [SpokenWord(w.word, w.start_s * 1000, w.end_s * 1000)
                         for w in chunk.words]))
                elif kind == "provenance":
                    provenance = response.provenance
            self.ctx.record.step("tts", self.number, provenance, sentence=index,
                                 ms=round(ms_since(started), 1))
            if chunks:
                started = time.perf_counter()
                motion = await self._animate(chunks, provenance, index)
                self.metrics.step("motion_ms", ms_since(started))
                self.ctx.record.step("motion", self.number, motion.provenance, sentence=index,
                                     ms=round(ms_since(started), 1))
                speech.put_nowait(_Motion(index, motion))
            index += 1
        speech.put_nowait(None)

    async def play(self, speech: asyncio.Queue[_Speech | None]) -> None:
        starts: dict[int, float] = {}
        await self.ctx.outbox.released()  # a speculative turn plays once it is confirmed
        while (item := await speech.get()) is not None:
            if item.sentence not in starts:
                earliest = self.audio_end_ms + (SENTENCE_GAP_MS if starts else 0.0)
                late = self.clock_ms() + LATE_MARGIN_MS if self.clock_zero is not None else 0.0
                starts[item.sentence] = max(earliest, late)
            offset = starts[item.sentence]
            if isinstance(item, _Audio):
                await self._send_audio(item, offset)
            else:
                self._send_motion(item.response, offset)

    # -- steps ---------------------------------------------------------------------------

    async def _synthesize(self, text: str) -> AsyncIterator[tts_pb2.SynthesizeSpeechResponse]:
        """The TTS stream of one sentence; the call is cancelled when the reply is."""
        client = self.ctx.client
        call = client.tts().SynthesizeSpeech(
            tts_pb2.SynthesizeSpeechRequest(text=text, voice_id=self.ctx.persona.voice_id,
                                            language_code=self.ctx.language),
            metadata=client.metadata("tts"), timeout=client.timeout_s)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as exc:
            raise _failure("TTS", error_from_rpc(exc)) from None
        finally:
            call.cancel()

    async def _animate(self, chunks: list[tts_pb2.AudioChunk],
                       provenance: common_pb2.ProvenanceRecord | None,
                       index: int) -> motion_pb2.AnimateSpeechResponse:
        track = motion_pb2.PhonemeTrack(
            language_code=self.ctx.language,
            phonemes=[p for c in chunks for p in c.phonemes],
            words=[w for c in chunks for w in c.words],
            duration_s=sum(c.duration_s for c in chunks))
        request = motion_pb2.AnimateSpeechRequest(
            phonemes=track, fps=VISEME_FPS, seed=self.number * 1000 + index,
            inputs=[provenance.output] if provenance is not None else [])
        try:
            return await self.ctx.client.animate(request)
        except KantokuError as exc:
            raise _failure("motion", exc) from None

    async def _send_audio(self, item: _Audio, offset: float) -> None:
        start_ms = offset + item.start_ms
        if self.clock_zero is not None:
            wait = start_ms - LEAD_MS - self.clock_ms()
            if wait > 0:
                await asyncio.sleep(wait / 1000)
        else:
            self.clock_zero = time.perf_counter()
        self._seq += 1
        self.sentences.append(SpokenSentence(
            item.text, start_ms, item.duration_ms,
            [SpokenWord(w.word, w.start_ms + offset, w.end_ms + offset) for w in item.words]))
        self.audio_end_ms = max(self.audio_end_ms, start_ms + item.duration_ms)
        self.ctx.outbox.put(
            {"type": "audio", "turn": self.number, "seq": self._seq,
             "start_ms": round(start_ms, 1), "duration_ms": round(item.duration_ms, 1),
             "sample_rate_hz": item.sample_rate_hz, "encoding": "pcm_s16le"},
            item.pcm, on_sent=lambda at: self.metrics.mark("first_audio", at))

    def _send_motion(self, motion: motion_pb2.AnimateSpeechResponse, offset: float) -> None:
        frames = [{"t_ms": round(f.time_s * 1000 + offset, 1),
                   "w": [round(w, 3) for w in f.weights]} for f in motion.visemes.frames]
        self.ctx.outbox.put({"type": "visemes", "turn": self.number,
                             "fps": motion.visemes.fps or VISEME_FPS, "frames": frames},
                            on_sent=lambda at: self.metrics.mark("first_viseme", at))
        for key in motion.gestures.keyframes:
            if key.type in GESTURES:
                self.ctx.outbox.put({"type": "gesture", "turn": self.number,
                                     "kind": GESTURES[key.type],
                                     "start_ms": round(key.start_s * 1000 + offset, 1),
                                     "end_ms": round(key.end_s * 1000 + offset, 1),
                                     "intensity": round(key.intensity, 3)})


def _failure(step: str, exc: KantokuError) -> ReplyFailure:
    return ReplyFailure(f"{step.upper()}_FAILED", f"the {step} step failed: {exc.message}")
