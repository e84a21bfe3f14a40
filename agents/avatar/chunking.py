"""The LLM's streamed reply cut into sentences for the TTS, each as soon as it is complete.

The first sentence is the one a person waits for: it goes to speech the moment its end mark
arrives. A sentence that runs long without one is cut at its last comma, so the voice never
waits for a paragraph (one with no comma either is cut at a space).
"""

from __future__ import annotations

import re

from kantoku.services.tts.sentences import complete_sentences

#: A sentence longer than this (characters) without an end mark is cut at its last comma.
LONG_CLAUSE_CHARS = 120
_COMMA = re.compile(r"[,、，;；:]")
#: What a reply should not read aloud: markdown marks, emoji and other pictographs.
_UNSPEAKABLE = re.compile(r"[*_#`~|>\[\]{}<]|[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


def speakable(text: str) -> str:
    """`text` without markdown marks and emoji, spaces collapsed ("" when no word is left)."""
    text = " ".join(_UNSPEAKABLE.sub(" ", text).split())
    return text if any(c.isalnum() for c in text) else ""


class SentenceChunker:
    """Feed it the reply's pieces as they stream; it hands back each finished sentence."""

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, piece: str) -> list[str]:
        """The sentences `piece` completed (often none)."""
        done, self._rest = complete_sentences(self._rest + piece)
        if len(self._rest) > LONG_CLAUSE_CHARS:
            commas = list(_COMMA.finditer(self._rest))
            cut = commas[-1].end() if commas else None
            if cut is None and len(self._rest) > 2 * LONG_CLAUSE_CHARS:
                space = self._rest.rfind(" ")  # no comma either: the last space, or here
                cut = space + 1 if space > 0 else len(self._rest)
            if cut is not None:
                done.append(self._rest[:cut].strip())
                self._rest = self._rest[cut:]
        return [s for s in (speakable(d) for d in done) if s]

    def flush(self) -> list[str]:
        """What is left when the stream ends: the last sentence, end mark or not."""
        rest, self._rest = speakable(self._rest), ""
        return [rest] if rest else []
