"""The LLM's streamed reply cut into sentences for the TTS, each as soon as it is complete.

The first sentence is the one a person waits for: it goes to speech the moment its end mark
arrives. A sentence that runs long without one is cut at its last comma, so the voice never
waits for a paragraph (one with no comma either is cut at a space).

The first chunk of a reply need not be a whole sentence: it leaves at its first clause mark
(comma, 、, ;, colon) once it holds `FIRST_CLAUSE_WORDS` words (`FIRST_CLAUSE_CHARS` characters
in a language written without spaces), so the voice starts while the LLM is still writing the
rest of the sentence. Later chunks are whole sentences.
"""

from __future__ import annotations

import re

from kantoku.services.tts.sentences import complete_sentences

#: A sentence longer than this (characters) without an end mark is cut at its last comma.
LONG_CLAUSE_CHARS = 120
_COMMA = re.compile(r"[,、，;；:：]")
#: The first chunk may end at a clause mark once it has this many words...
FIRST_CLAUSE_WORDS = 4
#: ...or, without spaces between words (Japanese), this many characters.
FIRST_CLAUSE_CHARS = 8
#: A clause mark of English: one followed by a space ("1,000" and "3:30" are not clauses).
_ASCII_MARK = frozenset(",;:")
#: What a reply should not read aloud: markdown marks, emoji and other pictographs.
_UNSPEAKABLE = re.compile(r"[*_#`~|>\[\]{}<]|[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


def speakable(text: str) -> str:
    """`text` without markdown marks and emoji, spaces collapsed ("" when no word is left)."""
    text = " ".join(_UNSPEAKABLE.sub(" ", text).split())
    return text if any(c.isalnum() for c in text) else ""


class SentenceChunker:
    """Feed it the reply's pieces as they stream; it hands back each finished sentence."""

    def __init__(self, first_clause: bool = True) -> None:
        self._rest = ""
        #: Whether the first chunk may be a clause; off once a chunk has left.
        self._first_clause = first_clause

    def feed(self, piece: str) -> list[str]:
        """The sentences `piece` completed (often none)."""
        done, self._rest = complete_sentences(self._rest + piece)
        if self._first_clause and not done and (cut := _first_clause_end(self._rest)):
            done.append(self._rest[:cut].strip())
            self._rest = self._rest[cut:]
        if len(self._rest) > LONG_CLAUSE_CHARS:
            commas = list(_COMMA.finditer(self._rest))
            cut = commas[-1].end() if commas else None
            if cut is None and len(self._rest) > 2 * LONG_CLAUSE_CHARS:
                space = self._rest.rfind(" ")  # no comma either: the last space, or here
                cut = space + 1 if space > 0 else len(self._rest)
            if cut is not None:
                done.append(self._rest[:cut].strip())
                self._rest = self._rest[cut:]
        chunks = [s for s in (speakable(d) for d in done) if s]
        self._first_clause = self._first_clause and not chunks
        return chunks

    def flush(self) -> list[str]:
        """What is left when the stream ends: the last sentence, end mark or not."""
        rest, self._rest = speakable(self._rest), ""
        return [rest] if rest else []


def _first_clause_end(text: str) -> int | None:
    """Where the first clause of `text` long enough to speak on its own ends, if it has one."""
    for mark in _COMMA.finditer(text):
        if mark.group() in _ASCII_MARK and not text[mark.end():mark.end() + 1].isspace():
            continue  # "1,000", or the stream has not yet said what follows
        head = text[:mark.start()].strip()
        if len(head.split()) >= FIRST_CLAUSE_WORDS or \
                (" " not in head and len(head) >= FIRST_CLAUSE_CHARS):
            return mark.end()
    return None
