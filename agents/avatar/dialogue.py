"""The conversation so far, as the persona's LLM sees it.

A reply the person interrupted is kept only as far as it was heard: the words the voice had
started by `heard_ms` (from the TTS's word timings on the reply clock), so the character does
not remember saying what nobody heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kantoku.agents.avatar.persona import Persona

#: Turns (a person's line and the reply) the LLM sees at most; older ones are dropped, half a
#: window at a time.
MAX_TURNS = 12


@dataclass(frozen=True)
class SpokenWord:
    word: str
    start_ms: float
    end_ms: float


@dataclass
class SpokenSentence:
    """One sentence of a reply as it was sent: its text and times on the reply clock."""

    text: str
    start_ms: float
    duration_ms: float
    words: list[SpokenWord] = field(default_factory=list)

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms

    def heard(self, heard_ms: float) -> str:
        """The part of the sentence heard by `heard_ms`: up to the last word started by then
        (found in the text in order); by time when the timings' words are not in the text."""
        if heard_ms >= self.end_ms:
            return self.text
        if heard_ms <= self.start_ms:
            return ""
        cursor = 0
        started = [w for w in self.words if w.start_ms < heard_ms]
        for word in started:
            index = self.text.find(word.word, cursor)
            if index < 0:
                break
            cursor = index + len(word.word)
        else:
            if started:
                return self.text[:cursor]
        share = (heard_ms - self.start_ms) / max(self.duration_ms, 1.0)
        return self.text[:round(len(self.text) * share)]


def heard_text(sentences: list[SpokenSentence], heard_ms: float, language: str) -> str:
    """What the person heard of a reply by `heard_ms` on its clock."""
    parts = [s.heard(heard_ms) for s in sentences]
    joiner = "" if language == "ja" else " "
    return joiner.join(p for p in parts if p).strip()


@dataclass
class Line:
    role: Literal["user", "assistant"]
    text: str
    interrupted: bool = False


class Dialogue:
    """History of one conversation with one persona."""

    def __init__(self, persona: Persona, max_turns: int = MAX_TURNS) -> None:
        self.persona, self.max_turns = persona, max_turns
        self.lines: list[Line] = []

    def add_user(self, text: str) -> None:
        """The person's line; two in a row (a reply cut before a word was heard) are joined."""
        self.lines = _with_user(self.lines, text)

    def add_reply(self, text: str, *, interrupted: bool = False) -> None:
        """The reply as heard; an interrupted one heard not at all leaves no line."""
        if text.strip():
            self.lines.append(Line("assistant", text.strip(), interrupted))

    def messages(self, user_text: str | None = None) -> list[dict[str, Any]]:
        """The system prompt and the last turns, in the chat-completions shape; with
        `user_text`, as they will be once it is added (the dialogue itself is not changed)."""
        lines = self.lines if user_text is None else _with_user(self.lines, user_text)
        # Older lines go half the window at a time, not a turn per turn, so the prompt's start
        # stays the same for several turns and the LLM server reuses what it has read of it.
        window = self.max_turns * 2
        if len(lines) > window:
            step = self.max_turns
            lines = lines[((len(lines) - window) // step + 1) * step:]
        while lines and lines[0].role != "user":
            lines = lines[1:]
        return [{"role": "system", "content": self.persona.system_prompt.strip()},
                *({"role": line.role, "content": line.text} for line in lines)]


def _with_user(lines: list[Line], text: str) -> list[Line]:
    if lines and lines[-1].role == "user":
        last = lines[-1]
        return [*lines[:-1], Line("user", last.text + "\n" + text, last.interrupted)]
    return [*lines, Line("user", text)]
