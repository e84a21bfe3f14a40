"""A streamed reply becomes sentences for the TTS the moment each is complete."""

from __future__ import annotations

from kantoku.agents.avatar.chunking import LONG_CLAUSE_CHARS, SentenceChunker, speakable


def stream(text: str, size: int) -> list[tuple[int, str]]:
    """(index of the piece that completed it, sentence) for `text` streamed `size` at a time."""
    chunker = SentenceChunker()
    out = []
    pieces = [text[i:i + size] for i in range(0, len(text), size)]
    for index, piece in enumerate(pieces):
        out += [(index, s) for s in chunker.feed(piece)]
    out += [(len(pieces), s) for s in chunker.flush()]
    return out


def test_japanese_sentences_leave_at_their_end_mark() -> None:
    text = "やあ、僕はベル。今日は何を話そうか？ 天気の話もいいね"
    got = stream(text, 3)
    assert [s for _, s in got] == ["やあ、僕はベル。", "今日は何を話そうか？", "天気の話もいいね"]
    # The first sentence leaves with the piece that holds its "。", not later.
    assert got[0][0] == text.index("。") // 3


def test_english_full_stops_wait_for_what_follows() -> None:
    got = stream("It costs 3.5 dollars. Cheap! Right", 4)
    assert [s for _, s in got] == ["It costs 3.5 dollars.", "Cheap!", "Right"]
    chunker = SentenceChunker()
    assert chunker.feed("Hello.") == []  # "Hello." may be "Hello.." or a number still
    assert chunker.feed(" Next") == ["Hello."]
    assert chunker.feed("?") == ["Next?"]
    assert chunker.flush() == []


def test_a_long_clause_is_cut_at_its_last_comma() -> None:
    clause = "and then " * (LONG_CLAUSE_CHARS // 9)
    got = [s for _, s in stream(f"{clause}, so {clause}, and more words", 5)]
    assert len(got) >= 2 and all(len(s) <= LONG_CLAUSE_CHARS + 10 for s in got[:-1])
    assert " ".join(got).replace(" ,", ",").split() == \
        f"{clause}, so {clause}, and more words".replace(" ,", ",").split()


def test_what_cannot_be_spoken_is_dropped() -> None:
    assert speakable("**Hi** there 😀 # ok") == "Hi there ok"
    assert stream("😀. **", 2) == []


def test_the_first_chunk_leaves_at_a_clause_once_it_has_a_few_words() -> None:
    got = stream("Well, the rain started at dawn, and it kept on falling, all day. Then, sun.", 3)
    assert [s for _, s in got] == ["Well, the rain started at dawn,",
                                   "and it kept on falling, all day.", "Then, sun."]
    # It leaves with the piece after its comma (the space says the comma is no "1,000").
    text = "Well, the rain started at dawn, and"
    assert got[0][0] == (text.index("dawn,") + len("dawn,")) // 3
    # a number is no clause; a short one ("Well,") waits for the sentence
    assert [s for _, s in stream("It costs 1,000 yen, they say. Hm.", 2)] == [
        "It costs 1,000 yen,", "they say.", "Hm."]
    assert [s for _, s in stream("Sure, I can. It is so.", 2)] == ["Sure, I can.", "It is so."]


def test_the_first_japanese_chunk_leaves_at_a_long_enough_clause() -> None:
    got = stream("今日はとてもいい天気だから、散歩に行こう。それから、帰ろう。", 2)
    assert [s for _, s in got] == ["今日はとてもいい天気だから、", "散歩に行こう。",
                                   "それから、帰ろう。"]
