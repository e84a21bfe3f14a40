"""Each turn's latencies, stage by stage, from the moment the person finished (the VAD's end of
turn, or a typed message's arrival): what the `turn_metrics` event reports and the ledger
keeps.

A speculative turn starts before that origin (at the VAD's speech_paused); its marks reached
before the decision count as 0 ms, and `speculative_lead_ms` says how early it started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

#: Marks, in the order a turn reaches them; the event reports each one's distance from the
#: origin as `speech_end_to_<mark>_ms`.
MARKS = ("transcript", "first_token", "first_sentence", "first_audio", "first_viseme",
         "reply_done")


@dataclass
class TurnMetrics:
    turn: int
    source: Literal["speech", "text"]
    #: time.perf_counter() when the person's turn ended.
    origin: float = field(default_factory=time.perf_counter)
    marks: dict[str, float] = field(default_factory=dict)
    #: Durations of single steps (asr_ms, llm_first_token_ms, tts_first_audio_ms, motion_ms).
    steps: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False
    #: From the interruption's cause (the frame whose audio the VAD heard speech in, or the
    #: typed message) to the `interrupted` event written to the socket.
    stop_ms: float | None = None
    #: A speculative turn: how long before the VAD's end-of-turn decision it started.
    speculative_lead_ms: float | None = None

    def mark(self, name: str, at: float | None = None) -> None:
        """Record `name` the first time it happens."""
        self.marks.setdefault(name, time.perf_counter() if at is None else at)

    def step(self, name: str, ms: float) -> None:
        self.steps.setdefault(name, round(ms, 1))

    def since_origin(self, name: str) -> float | None:
        at = self.marks.get(name)
        return None if at is None else max(0.0, round((at - self.origin) * 1000, 1))

    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "turn_metrics", "turn": self.turn,
                                 "source": self.source}
        for name in MARKS:
            event[f"speech_end_to_{name}_ms"] = self.since_origin(name)
        first_sentence, first_audio = (self.marks.get("first_sentence"),
                                       self.marks.get("first_audio"))
        # a sentence ready before the decision (speculation) counts from the decision
        event["first_sentence_to_audio_ms"] = (
            max(0.0, round((first_audio - max(first_sentence, self.origin)) * 1000, 1))
            if first_sentence is not None and first_audio is not None else None)
        event.update(self.steps)
        event["speculative"] = self.speculative_lead_ms is not None
        event["speculative_lead_ms"] = self.speculative_lead_ms
        event["interrupted"] = self.interrupted
        if self.stop_ms is not None:
            event["stop_ms"] = self.stop_ms
        return event


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
