"""Sentence splitting shared by the TTS backends, so every chunk carries the text it speaks."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？!?\n])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def complete_sentences(text: str) -> tuple[list[str], str]:
    """The sentences `text` has finished, and the unfinished rest (for streamed text: a `.` at
    the very end waits for what follows, since "3." may become "3.5")."""
    parts = _SENTENCE_END.split(text)
    return [p.strip() for p in parts[:-1] if p.strip()], parts[-1]
