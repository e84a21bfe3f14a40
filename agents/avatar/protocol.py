"""The avatar's WebSocket protocol, version 1 (docs/avatar-protocol.md): what a client may send,
read strictly, and the errors a client gets, each naming the field at fault.

Text frames are JSON objects with a "type"; binary frames are the person's microphone audio
(PCM16 LE mono at the `start` message's sample rate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kantoku.planner.planning.brief import describe_errors

PROTOCOL = 1
#: One binary frame holds at most this much audio.
MAX_FRAME_MS = 1000
#: An utterance longer than this is dropped (the ASR takes at most 30 s).
MAX_UTTERANCE_MS = 30_000
#: Microphone audio may arrive faster than real time by this factor, beyond a burst of
#: `AUDIO_BURST_MS` ahead (a client catching up after a hiccup).
MAX_AUDIO_RATE, AUDIO_BURST_MS = 2.0, 3000
#: A text frame is at most this long (a typed turn is a few lines).
MAX_TEXT_FRAME_BYTES = 16 * 1024
MAX_TYPED_CHARS = 2000

# WebSocket close codes.
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_INTERNAL = 1000, 1008, 1009, 1011


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Start(_Message):
    type: Literal["start"]
    protocol: Literal[1] = 1
    persona: str = Field("", max_length=40, description="a persona id; empty: the default")
    language: Literal["ja", "en", ""] = ""
    sample_rate_hz: int = Field(16000, ge=8000, le=48000)


class Text(_Message):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TYPED_CHARS)


class Playback(_Message):
    type: Literal["playback"]
    turn: int = Field(ge=1)
    played_ms: float = Field(ge=0, le=3_600_000)


class Stop(_Message):
    type: Literal["stop"]


ClientMessage = Annotated[Start | Text | Playback | Stop, Field(discriminator="type")]
_CLIENT = TypeAdapter(ClientMessage)
TYPES = ("start", "text", "playback", "stop")


@dataclass
class ProtocolError(Exception):
    """What the client did wrong: an `error` event, and a close when `fatal`."""

    code: str
    message: str
    field: str | None = None
    fatal: bool = False
    close_code: int = CLOSE_POLICY

    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message,
                                 "fatal": self.fatal}
        if self.field:
            event["field"] = self.field
        return event


def read_message(text: str) -> Start | Text | Playback | Stop:
    """A client's text frame as its message.

    Raises:
        ProtocolError: MESSAGE_TOO_LARGE, NOT_JSON, UNKNOWN_TYPE or MESSAGE_INVALID (naming the
            field); none of them fatal.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_FRAME_BYTES:
        raise ProtocolError("MESSAGE_TOO_LARGE", f"a text frame is at most "
                            f"{MAX_TEXT_FRAME_BYTES} bytes")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("NOT_JSON", f"a text frame must be a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise ProtocolError("NOT_JSON", "a text frame must be a JSON object with a \"type\"")
    kind = data.get("type")
    if kind not in TYPES:
        raise ProtocolError("UNKNOWN_TYPE", f"type: {kind!r} is not one of {', '.join(TYPES)}",
                            "type")
    try:
        return _CLIENT.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"][1:]  # the first is the message's type
        where = ".".join(str(p) for p in first) or None
        message = "; ".join(part.removeprefix(f"{kind}.")
                            for part in describe_errors(exc).split("; "))
        raise ProtocolError("MESSAGE_INVALID", message, where) from None
