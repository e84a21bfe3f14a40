"""The dialogue keeps an interrupted reply only as far as the person heard it."""

from __future__ import annotations

from kantoku.agents.avatar.dialogue import Dialogue, SpokenSentence, SpokenWord, heard_text
from kantoku.agents.avatar.persona import load_personas


def sentence(text: str, start_ms: float, words: list[tuple[str, float, float]]
             ) -> SpokenSentence:
    end = max(e for _, _, e in words)
    return SpokenSentence(text, start_ms, end, [SpokenWord(w, start_ms + s, start_ms + e)
                                                for w, s, e in words])


REPLY = [sentence("Hello there, friend.", 0, [("Hello", 0, 300), ("there", 300, 600),
                                              ("friend", 650, 1000)]),
         sentence("How are you?", 1150, [("How", 0, 200), ("are", 200, 400),
                                         ("you", 400, 700)])]


def test_heard_text_follows_the_word_timings() -> None:
    assert heard_text(REPLY, 0, "en") == ""
    assert heard_text(REPLY, 10, "en") == "Hello"
    assert heard_text(REPLY, 400, "en") == "Hello there"
    assert heard_text(REPLY, 1100, "en") == "Hello there, friend."
    assert heard_text(REPLY, 1400, "en") == "Hello there, friend. How are"
    assert heard_text(REPLY, 5000, "en") == "Hello there, friend. How are you?"


def test_words_missing_from_the_text_fall_back_to_time() -> None:
    # Kokoro's word labels may be readings, not the written words.
    spoken = [sentence("今日は晴れ。", 0, [("きょう", 0, 400), ("は", 400, 500),
                                           ("はれ", 500, 1000)])]
    assert heard_text(spoken, 500, "ja") == "今日は"
    assert heard_text(spoken, 2000, "ja") == "今日は晴れ。"


def test_an_interrupted_reply_is_remembered_as_heard() -> None:
    dialogue = Dialogue(load_personas()["joe"])
    dialogue.add_user("Hi")
    dialogue.add_reply(heard_text(REPLY, 400, "en"), interrupted=True)
    dialogue.add_user("Wait, stop.")
    messages = dialogue.messages()
    assert messages[0]["role"] == "system" and "Joe" in messages[0]["content"]
    assert messages[1:] == [{"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello there"},
                            {"role": "user", "content": "Wait, stop."}]
    # A reply cut before a word was heard leaves no line; two lines of the person join.
    dialogue.add_reply("", interrupted=True)
    dialogue.add_user("Sorry.")
    assert dialogue.messages()[-1] == {"role": "user", "content": "Wait, stop.\nSorry."}


def test_old_turns_are_dropped_a_few_at_a_time() -> None:
    dialogue = Dialogue(load_personas()["joe"], max_turns=4)
    firsts = []
    for n in range(20):
        dialogue.add_user(f"q{n}")
        seen = dialogue.messages()[1:]
        assert seen[-1]["content"] == f"q{n}" and seen[0]["role"] == "user"
        assert len(seen) <= 2 * 4
        firsts.append(seen[0]["content"])
        dialogue.add_reply(f"a{n}")
    # The prompt starts with the same line for several turns (the LLM server reuses what it
    # has read of it), then drops half the window at once.
    assert firsts == ["q0"] * 4 + ["q2"] * 2 + ["q4"] * 2 + ["q6"] * 2 + ["q8"] * 2 + \
        ["q10"] * 2 + ["q12"] * 2 + ["q14"] * 2 + ["q16"] * 2
