"""The session's writer: events in order, an audio header with its frame, and an interruption
that overtakes what its turn still had queued."""

from __future__ import annotations

import asyncio
import json

from kantoku.agents.avatar.outbox import HeldOutbox, Outbox
from kantoku.agents.avatar.protocol import ProtocolError, read_message


async def test_an_interruption_overtakes_its_turns_queue() -> None:
    written: list[str | bytes] = []
    release = asyncio.Event()

    async def send_text(text: str) -> None:
        await release.wait()  # a slow socket: everything queues behind the first write
        written.append(text)

    async def send_bytes(data: bytes) -> None:
        written.append(data)

    outbox = Outbox(send_text, send_bytes)
    writer = asyncio.create_task(outbox.run())
    outbox.put({"type": "listening"})
    await asyncio.sleep(0)  # the writer has taken "listening" and waits on the socket
    outbox.put({"type": "audio", "turn": 1, "seq": 1}, b"\x00\x00")
    outbox.put({"type": "visemes", "turn": 1})
    outbox.put({"type": "speech_started", "at_ms": 5})
    sent: list[float] = []
    outbox.overtake(1, {"type": "interrupted", "turn": 1}, on_sent=sent.append)
    release.set()
    await outbox.drain()
    writer.cancel()
    kinds = [json.loads(w)["type"] if isinstance(w, str) else "binary" for w in written]
    assert kinds == ["listening", "interrupted", "speech_started"] and len(sent) == 1


async def test_a_held_turn_sends_nothing_until_released_and_nothing_if_dropped() -> None:
    written: list[str | bytes] = []

    async def send_text(text: str) -> None:
        written.append(text)

    async def send_bytes(data: bytes) -> None:
        written.append(data)

    outbox = Outbox(send_text, send_bytes)
    writer = asyncio.create_task(outbox.run())
    confirmed, dropped = HeldOutbox(outbox), HeldOutbox(outbox)
    confirmed.put({"type": "transcript", "turn": 1})
    dropped.put({"type": "transcript", "turn": 1})
    confirmed.put({"type": "reply_text", "turn": 1})
    sent: list[float] = []
    confirmed.put({"type": "audio", "turn": 1}, b"\x00\x00", on_sent=sent.append)
    outbox.put({"type": "speech_ended"})
    await asyncio.sleep(0.01)
    assert [json.loads(w)["type"] for w in written] == ["speech_ended"] and not sent
    dropped.drop()
    dropped.put({"type": "reply_text", "turn": 1})
    confirmed.release()
    confirmed.put({"type": "reply_done", "turn": 1})  # after the release: straight on
    await confirmed.drain()
    writer.cancel()
    kinds = [json.loads(w)["type"] if isinstance(w, str) else "binary" for w in written]
    assert kinds == ["speech_ended", "transcript", "reply_text", "audio", "binary", "reply_done"]
    assert len(sent) == 1


def test_client_messages_are_read_strictly() -> None:
    assert read_message('{"type":"start","persona":"bell"}').type == "start"
    for text, code, field in [("[1]", "NOT_JSON", None), ('{"type":"x"}', "UNKNOWN_TYPE", "type"),
                              ('{"type":"start","sample_rate_hz":4}', "MESSAGE_INVALID",
                               "sample_rate_hz"),
                              ('{"type":"text","text":"' + "a" * 3000 + '"}', "MESSAGE_INVALID",
                               "text"),
                              ('{"type":"stop","now":1}', "MESSAGE_INVALID", "now")]:
        try:
            read_message(text)
        except ProtocolError as exc:
            assert (exc.code, exc.field, exc.fatal) == (code, field, False), text
            assert exc.event()["type"] == "error"
        else:
            raise AssertionError(f"{text} was accepted")
