"""One conversation over one WebSocket: the input side of the pipeline and the turns.

    mic frames --> VAD --speech_ended--> ASR --> transcript --> Reply (think, speak, play)
    typed text ---------------------------------------------->
    VAD speech_started / typed text while a reply runs --> interrupt (one cancel path)

Every event leaves through the session's Outbox; a reply is one task, cancelled whole.

Speculative turns: at the VAD's speech_paused (`speculate_after_ms` of silence, before the
end of turn) the turn starts on the utterance heard so far: ASR, then the reply, which thinks
and speaks but plays nothing. Everything it would send or record is held (HeldOutbox,
HeldRecord). The end of turn on that same silence confirms it: the held events go out at once,
in order, and it plays on as a normal turn. Speech again first (speech_resumed), or anything
else that would interrupt, drops it through the same cancel path: its tasks are cancelled and
nothing of it is sent, recorded, numbered or kept in the dialogue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kantoku.agents.avatar.dialogue import Dialogue, heard_text
from kantoku.agents.avatar.outbox import HeldOutbox, Outbox
from kantoku.agents.avatar.persona import Persona
from kantoku.agents.avatar.protocol import (
    AUDIO_BURST_MS,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    MAX_AUDIO_RATE,
    MAX_FRAME_MS,
    MAX_UTTERANCE_MS,
    PROTOCOL,
    Playback,
    ProtocolError,
    Start,
    Stop,
    Text,
    read_message,
)
from kantoku.agents.avatar.reply import Reply, ReplyContext, ReplyFailure
from kantoku.agents.avatar.session_record import HeldRecord, SessionRecord
from kantoku.agents.avatar.turn_metrics import TurnMetrics, ms_since
from kantoku.agents.llm_chat import ChatModels
from kantoku.planner.planning.endpoint import LLMFailure, LLMSession
from kantoku.planner.rights.ledger import Ledger
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.audio import pcm16_wav_bytes
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import KantokuError
from kantoku.services.asr.client import recognize
from kantoku.services.asr.vad import StreamingVad, VadEvent
from kantoku.services.motion.backend import VISEMES

log = logging.getLogger(__name__)

#: The embedded LLM chats in English only.
EMBEDDED_LANGUAGES = ["en"]
#: A client has this long after connecting to send `start`.
START_TIMEOUT_S = 15.0
#: Speech the VAD must hear before it calls it speech: 64 ms (two Silero windows) keeps a
#: barge-in under 200 ms from the first syllable; 96 ms made it about 210 ms.
SPEECH_ONSET_MS = 64.0
#: Silence after speech at which a turn starts speculatively (the end of turn comes at 500 ms).
SPECULATE_AFTER_MS = 200.0


@dataclass
class AvatarHost:
    """What every session of one server shares."""

    client: ServiceClient
    personas: dict[str, Persona]
    default_persona: str
    models: ChatModels
    ledger: Ledger
    store: AssetStore | None = None
    asr_model: str = "whisper-base"
    motion_model: str = "kantoku-visemes-v1"
    #: Start a turn speculatively after this much silence (None: only at the end of turn).
    speculate_after_ms: float | None = SPECULATE_AFTER_MS
    sessions: set[AvatarSession] = field(default_factory=set)


@dataclass
class Speculation:
    """A turn started at the VAD's speech_paused, before its end of turn; held until then."""

    number: int
    #: Where the silence it started in began (the VAD's at_ms): the end of turn that confirms
    #: it has the same.
    paused_at_ms: float
    started: float
    metrics: TurnMetrics
    outbox: HeldOutbox
    record: HeldRecord
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: The person's line it answers (after the transcript) and its reply (once started).
    text: str | None = None
    reply: Reply | None = None
    reply_task: asyncio.Task[None] | None = None
    #: The speech recognition failed: the end of turn runs the turn afresh.
    failed: bool = False


class AvatarSession:
    def __init__(self, host: AvatarHost, socket: WebSocket) -> None:
        self.host, self.socket = host, socket
        self.id = secrets.token_hex(8)
        self.outbox = Outbox(socket.send_text, socket.send_bytes)
        self.turns = 0
        self.reply: Reply | None = None
        self.reply_task: asyncio.Task[None] | None = None
        self.speculation: Speculation | None = None
        self.listening_tasks: set[asyncio.Task[None]] = set()
        self.pending_text: list[str] = []
        self.record: SessionRecord | None = None
        self.llm: LLMSession | None = None
        self.vad: StreamingVad | None = None
        #: Mic audio the client may still send ahead of real time (ms): a bucket that fills
        #: at MAX_AUDIO_RATE x real time up to AUDIO_BURST_MS; each frame takes its length.
        self.audio_credit_ms = float(AUDIO_BURST_MS)
        self.audio_checked_at = time.perf_counter()
        self.speech_started_ms = 0.0
        #: An utterance was cut at MAX_UTTERANCE_MS (at cut_at_ms) and the person talks on.
        self.monologue, self.cut_at_ms = False, 0.0

    # -- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until the client stops or goes; always frees everything."""
        self.host.sessions.add(self)
        writer = asyncio.create_task(self.outbox.run(), name=f"outbox {self.id}")
        close_code, reason = CLOSE_NORMAL, ""
        try:
            await self._serve()
        except ProtocolError as exc:
            self.outbox.put(exc.event())
            close_code, reason = exc.close_code, exc.code
        except WebSocketDisconnect:
            close_code = 0
        except Exception as exc:  # noqa: BLE001 - the client hears why before the close
            log.exception("avatar session %s failed", self.id)
            self.outbox.put(ProtocolError("INTERNAL", f"the server failed: {exc}",
                                          fatal=True).event())
            close_code, reason = CLOSE_INTERNAL, "INTERNAL"
        finally:
            await self._free()
            if close_code:
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    async with asyncio.timeout(2):
                        await self.outbox.drain()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            if close_code and self.socket.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.socket.close(close_code, reason[:120])
            self.host.sessions.discard(self)

    async def _serve(self) -> None:
        start = await self._receive_start()
        await self._begin(start)
        while True:
            message = await self.socket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                self._on_audio(message["bytes"])
            elif message.get("text") is not None:
                try:
                    incoming = read_message(message["text"])
                except ProtocolError as exc:
                    self.outbox.put(exc.event())
                    continue
                if isinstance(incoming, Stop):
                    self.outbox.put({"type": "closed"})
                    return
                self._on_message(incoming)

    async def _receive_start(self) -> Start:
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                message = await self.socket.receive()
        except TimeoutError:
            raise ProtocolError("START_REQUIRED", f"no start message within {START_TIMEOUT_S:g} "
                                "s of connecting", "type", fatal=True) from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is None:
            raise ProtocolError("START_REQUIRED", "send {\"type\":\"start\",...} before any "
                                "audio", "type", fatal=True)
        try:
            incoming = read_message(message["text"])
        except ProtocolError as exc:
            exc.fatal = True
            raise
        if not isinstance(incoming, Start):
            raise ProtocolError("START_REQUIRED", f"the first message must be start, not "
                                f"{incoming.type}", "type", fatal=True)
        return incoming

    async def _begin(self, start: Start) -> None:
        persona_id = start.persona or self.host.default_persona
        persona = self.host.personas.get(persona_id)
        if persona is None:
            raise ProtocolError("PERSONA_NOT_FOUND", f"persona: no persona {persona_id!r}; "
                                f"choose one of {', '.join(sorted(self.host.personas))}",
                                "persona", fatal=True)
        language = start.language or persona.language
        if language != persona.language:
            raise ProtocolError("LANGUAGE_UNSUPPORTED", f"language: {persona.name} speaks "
                                f"{persona.language}, not {language}", "language", fatal=True)
        self.persona, self.language, self.sample_rate_hz = persona, language, start.sample_rate_hz
        self.dialogue = Dialogue(persona)
        try:
            endpoint, settings, kind = await self.host.models.endpoint()
            self.llm = LLMSession(endpoint, settings)
            model = await self.llm.check_model()
        except (LLMFailure, KantokuError) as exc:
            raise ProtocolError("LLM_UNAVAILABLE", f"the persona's LLM cannot be reached: "
                                f"{exc}", fatal=True, close_code=CLOSE_INTERNAL) from None
        self.llm_kind = kind
        self.vad = StreamingVad(start.sample_rate_hz, min_speech_ms=SPEECH_ONSET_MS,
                                max_utterance_ms=MAX_UTTERANCE_MS,
                                pause_ms=self.host.speculate_after_ms)
        models = {"asr": self.host.asr_model, "llm": model, "tts": persona.voice_id,
                  "motion": self.host.motion_model}
        self.record = SessionRecord(self.host.ledger, self.id)
        self.record.started(persona, models, language)
        self.outbox.put({"type": "ready", "protocol": PROTOCOL, "session_id": self.id,
                         "persona": persona.summary(), "models": models, "llm": kind,
                         "llm_languages": EMBEDDED_LANGUAGES if kind == "embedded"
                         else ["ja", "en"], "sample_rate_hz": start.sample_rate_hz})
        self.outbox.put({"type": "visemes", "names": list(VISEMES)})
        self.outbox.put({"type": "listening"})

    async def _free(self) -> None:
        """Cancel the reply and the recognitions; close the LLM client; finish the record."""
        tasks = [t for t in (self.reply_task, *self.listening_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.llm is not None:
            await self.llm.close()
        if self.record is not None:
            await self.record.close()

    # -- what the client sends -----------------------------------------------------------

    def _on_message(self, message: Start | Text | Playback) -> None:
        if isinstance(message, Start):
            self.outbox.put(ProtocolError("ALREADY_STARTED", "start: the session has "
                                          "started; open a new socket for another persona",
                                          "type").event())
        elif isinstance(message, Text):
            cause = time.perf_counter()
            self.interrupt(cause)
            self.turns += 1
            self._start_reply(message.text, TurnMetrics(self.turns, "text", origin=cause))
        elif self.reply is not None and self.reply.number == message.turn:
            self.reply.report_playback(message.played_ms)

    def _on_audio(self, pcm: bytes) -> None:
        arrived = time.perf_counter()
        if len(pcm) % 2:
            raise ProtocolError("AUDIO_INVALID", f"audio: {len(pcm)} bytes is not whole PCM16 "
                                "samples (2 bytes each)", "audio", fatal=True)
        frame_ms = 1000 * len(pcm) / 2 / self.sample_rate_hz
        if frame_ms > MAX_FRAME_MS:
            raise ProtocolError("AUDIO_FRAME_TOO_LARGE", f"audio: one frame holds "
                                f"{frame_ms:.0f} ms; send at most {MAX_FRAME_MS} ms per frame",
                                "audio", fatal=True, close_code=CLOSE_TOO_BIG)
        self.audio_credit_ms = min(float(AUDIO_BURST_MS), self.audio_credit_ms + MAX_AUDIO_RATE
                                   * (arrived - self.audio_checked_at) * 1000) - frame_ms
        self.audio_checked_at = arrived
        if self.audio_credit_ms < 0:
            raise ProtocolError("AUDIO_TOO_FAST", f"audio: arriving faster than "
                                f"{MAX_AUDIO_RATE:g}x real time for more than "
                                f"{AUDIO_BURST_MS / 1000:g} s; send it as it is recorded",
                                "audio", fatal=True)
        assert self.vad is not None
        for event in self.vad.feed(pcm):
            self._on_vad(event, arrived)

    def _on_vad(self, event: VadEvent, arrived: float) -> None:
        if event.kind == "speech_paused":  # internal: the client hears of neither
            self._speculate(event)
            return
        if event.kind == "speech_resumed":
            self._drop_speculation()
            return
        self.outbox.put({"type": event.kind, "at_ms": round(event.at_ms, 1)})
        if event.kind == "speech_started":
            # speech that goes on where an over-long utterance was cut is still that one
            self.monologue = self.monologue and event.at_ms - self.cut_at_ms < 1.0
            self.speech_started_ms = event.at_ms
            if not self.monologue:
                self.interrupt(arrived)
            return
        assert self.vad is not None
        speculation, self.speculation = self.speculation, None
        if speculation is not None and (speculation.paused_at_ms != event.at_ms or
                                        self.monologue):
            self._drop(speculation)  # not this silence (the VAD cut the utterance)
            speculation = None
        utterance = self.vad.utterance()
        if event.at_ms - self.speech_started_ms >= MAX_UTTERANCE_MS:  # the VAD cut it there
            self.monologue, self.cut_at_ms = True, event.at_ms
            self.outbox.put(ProtocolError(
                "UTTERANCE_TOO_LONG", f"audio: one utterance may last less than "
                f"{MAX_UTTERANCE_MS // 1000} s; this one was dropped, pause more often",
                "audio").event())
            return
        if self.monologue:  # the rest of the over-long one: dropped with it
            self.monologue = False
            return
        self.turns += 1
        if speculation is not None and self._confirm(speculation, event, arrived):
            return
        metrics = TurnMetrics(self.turns, "speech", origin=arrived)
        # The silence the VAD waited for before deciding: the person hears it on top.
        metrics.step("end_of_turn_wait_ms", event.detected_ms - event.at_ms)
        self._track(asyncio.create_task(self._listen(utterance, metrics),
                                        name=f"asr {self.id} {self.turns}"))

    def _track(self, task: asyncio.Task[None], speculation: Speculation | None = None) -> None:
        """Keep `task` until it ends (the session cancels what is left when it closes)."""
        self.listening_tasks.add(task)
        task.add_done_callback(self.listening_tasks.discard)
        if speculation is not None:
            speculation.tasks.append(task)

    # -- speculative turns ---------------------------------------------------------------

    def _speculate(self, event: VadEvent) -> None:
        """Start the next turn on what the person has said so far, held until confirmed."""
        if self.monologue or self.vad is None or self.record is None:
            return
        self._drop_speculation()
        now = time.perf_counter()
        metrics = TurnMetrics(self.turns + 1, "speech", origin=now)
        speculation = Speculation(self.turns + 1, event.at_ms, now, metrics,
                                  HeldOutbox(self.outbox), HeldRecord(self.record))
        self.speculation = speculation
        self._track(asyncio.create_task(
            self._listen(self.vad.utterance(), metrics, speculation),
            name=f"asr {self.id} {speculation.number} (speculative)"), speculation)

    def _confirm(self, speculation: Speculation, event: VadEvent, arrived: float) -> bool:
        """The end of turn the speculation waited for: it becomes the turn, and what it held
        goes out at once. False (and it is dropped) when it cannot stand for the turn."""
        stale = speculation.failed or speculation.number != self.turns or (
            speculation.reply is not None and speculation.text is not None and
            speculation.reply.messages != self.dialogue.messages(speculation.text))
        if stale:  # its recognition failed, or the history changed under it: start afresh
            self._drop(speculation)
            return False
        metrics = speculation.metrics
        metrics.origin = arrived
        metrics.speculative_lead_ms = round((arrived - speculation.started) * 1000, 1)
        metrics.step("end_of_turn_wait_ms", event.detected_ms - event.at_ms)
        if speculation.reply is not None and speculation.reply_task is not None:
            assert speculation.text is not None
            self.interrupt(arrived)  # a reply to typed text, started meanwhile
            self.pending_text.clear()
            self.dialogue.add_user(speculation.text)
            self.reply, self.reply_task = speculation.reply, speculation.reply_task
        speculation.record.release()
        speculation.outbox.release()
        return True

    def _drop_speculation(self) -> None:
        speculation, self.speculation = self.speculation, None
        if speculation is not None:
            self._drop(speculation)

    @staticmethod
    def _drop(speculation: Speculation) -> None:
        """Cancel a speculative turn silently: nothing it held is sent or recorded."""
        speculation.outbox.drop()
        speculation.record.drop()
        for task in speculation.tasks:
            task.cancel()

    # -- a turn --------------------------------------------------------------------------

    async def _listen(self, utterance: bytes, metrics: TurnMetrics,
                      speculation: Speculation | None = None) -> None:
        """The utterance to text; then the reply (or, when the person has started speaking
        again meanwhile, the text waits for the rest of what they say). A speculative turn
        starts its reply at once, held; if it is confirmed before the transcript, it goes on
        as any turn."""
        assert self.record is not None
        outbox = self.outbox if speculation is None else speculation.outbox
        started = time.perf_counter()
        try:
            # no word times: the recognizer then takes its short-window path (about 3x faster)
            transcript = await recognize(self.host.client, utterance, self.sample_rate_hz,
                                         self.language, word_timings=False)
        except KantokuError as exc:
            if speculation is not None and not speculation.outbox.is_released:
                speculation.failed = True  # the end of turn tries again
                return
            outbox.put({"type": "error", "code": "ASR_FAILED", "message":
                        f"speech recognition failed: {exc.message}", "fatal": False,
                        "turn": metrics.turn})
            if self.reply is None:
                outbox.put({"type": "listening"})
            return
        metrics.step("asr_ms", ms_since(started))
        metrics.mark("transcript")
        record = self.record

        def record_asr() -> None:
            record.step("asr", metrics.turn, transcript.provenance,
                        ms=metrics.steps["asr_ms"], audio_ms=round(
                            1000 * len(utterance) / 2 / self.sample_rate_hz, 1),
                        stored_audio=self._store_utterance(utterance))

        if speculation is None:
            record_asr()
        else:
            speculation.record.later(record_asr)  # a dropped speculation stores nothing
        text = transcript.text.strip()
        outbox.put({"type": "transcript", "turn": metrics.turn, "text": text,
                    "final": True, "language": transcript.language_code or self.language})
        if not text:
            if self.reply is None:
                outbox.put({"type": "listening"})
            return
        if speculation is not None and not speculation.outbox.is_released:
            speculation.text = self._joined([*self.pending_text, text])
            reply = Reply(metrics.turn, self.dialogue.messages(speculation.text), metrics,
                          self._context(speculation.outbox, speculation.record))
            speculation.reply = reply
            speculation.reply_task = asyncio.create_task(
                self._run_reply(reply), name=f"reply {self.id} {reply.number} (speculative)")
            self._track(speculation.reply_task, speculation)
            return
        self.pending_text.append(text)
        if self.vad is not None and self.vad.speaking:
            return
        self.interrupt(time.perf_counter())
        text = self._joined(self.pending_text)
        self.pending_text.clear()
        self._start_reply(text, metrics)

    def _joined(self, lines: list[str]) -> str:
        return "".join(lines) if self.language == "ja" else " ".join(lines)

    def _store_utterance(self, utterance: bytes) -> dict[str, str] | None:
        if not self.persona.store_audio or self.host.store is None:
            return None
        ref = self.host.store.put_bytes(pcm16_wav_bytes(utterance, self.sample_rate_hz),
                                        "audio/wav")
        return {"uri": ref.uri, "sha256": ref.sha256}

    # -- replies and interruptions -------------------------------------------------------

    def _context(self, outbox: Outbox | HeldOutbox, record: SessionRecord | HeldRecord
                 ) -> ReplyContext:
        assert self.llm is not None
        return ReplyContext(self.host.client, self.persona, self.language, self.llm,
                            self.llm_kind, outbox, record)

    def _start_reply(self, text: str, metrics: TurnMetrics) -> None:
        assert self.record is not None
        self.dialogue.add_user(text)
        reply = Reply(metrics.turn, self.dialogue.messages(), metrics,
                      self._context(self.outbox, self.record))
        self.reply = reply
        self.reply_task = asyncio.create_task(self._run_reply(reply),
                                              name=f"reply {self.id} {reply.number}")

    async def _run_reply(self, reply: Reply) -> None:
        try:
            await reply.run()
        except ReplyFailure as exc:
            reply.ctx.outbox.put({"type": "error", "code": exc.code, "message": exc.message,
                                  "fatal": False, "turn": reply.number})
        except Exception:  # noqa: BLE001 - a bug ends the turn, not the conversation
            log.exception("avatar session %s: reply %d failed", self.id, reply.number)
            reply.ctx.outbox.put({"type": "error", "code": "INTERNAL", "message": "the reply "
                                  "failed inside the server; ask again", "fatal": False,
                                  "turn": reply.number})
        await reply.ctx.outbox.released()  # a speculative one that failed: once confirmed
        said = reply.text
        if self.reply is not reply:  # interrupted meanwhile: interrupt() kept what was heard
            return
        self.dialogue.add_reply(said)
        self.reply = None
        self.outbox.put({"type": "listening"})

    def interrupt(self, cause: float) -> None:
        """Stop the reply in progress (if any) at once: `interrupted` overtakes its queued
        events, its LLM stream and TTS call are cancelled, and the dialogue keeps only what
        the person heard. `cause` is the perf_counter of what interrupted it. A speculative
        turn in progress is dropped silently."""
        self._drop_speculation()
        reply, task = self.reply, self.reply_task
        if reply is None or task is None or task.done():
            return
        self.reply = None
        heard_ms = reply.heard_ms()
        heard = heard_text(reply.sentences, heard_ms, self.language)
        reply.metrics.interrupted = True

        def sent(at: float) -> None:
            reply.metrics.stop_ms = round((at - cause) * 1000, 1)
            self.outbox.put(reply.metrics.event())
            assert self.record is not None
            self.record.add("turn", data=reply.metrics.event())

        self.outbox.overtake(reply.number, {"type": "interrupted", "turn": reply.number,
                                            "heard_ms": heard_ms, "heard_text": heard},
                             on_sent=sent)
        task.cancel()
        self.dialogue.add_reply(heard, interrupted=True)

    def live(self) -> dict[str, Any]:
        return {"id": self.id, "turns": self.turns, "talking": self.reply is not None}
