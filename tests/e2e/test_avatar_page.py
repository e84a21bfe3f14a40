"""The avatar's page in a real browser (the system's Chromium, driven by Playwright) against a
real avatar server, real gRPC services (tts, motion, asr) and a scripted OpenAI-compatible LLM.

The microphone is Chromium's fake capture device playing a WAV the project's own TTS speaks: a
question, a pause in which the character starts answering aloud, then a second utterance that
cuts the answer off. The page must hear the question, show and play the answer with the mouth
moving on the audio's clock, and stop everything at once when interrupted. A typed question
is answered the same way, and the mouth rests when the answer ends.

`KANTOKU_SCREENSHOTS=docs` keeps the character talking as docs/avatar.png (and the spoken
conversation as docs/avatar-interrupted.png); else they go to a temporary folder.
"""

from __future__ import annotations

import os
import re
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.integration.test_avatar_protocol import running_avatar
from tests.integration.test_jobs import standalone_services
from tests.scripted_llm import ScriptedLLM, Text, scripted_llm

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

QUESTION = "Hello Joe. Please tell me a story about the weather."
CUT_IN = "Wait, stop please. What time is it?"
STORY = ("Sure, here is a story about the rain. The rain started at dawn and kept on falling "
         "over the quiet town. People walked slowly under their umbrellas, and the shops "
         "opened late. By noon the river had risen, and the children watched it from the "
         "bridge. An old man sold hot tea by the station, and everyone stopped to talk. "
         "When the evening came, the clouds broke, and the whole town smelled of wet stone.")
TIME = "It is a quarter past three."
BELL_REPLY = "うん、元気だよ。今日はいい天気だね。何か話したいことはある？"
#: Seconds of silence after the question: enough for the answer to start (the end of the
#: turn, recognition, the first sentence spoken) on a busy two-core machine.
PAUSE_S = 12.0
ANSWERED, HEARD = 40_000, 30_000  # ms

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: install the "
                       "distribution's chromium package to drive the avatar's page"),
]


@pytest.fixture(scope="module")
def services() -> Iterator[str]:
    with standalone_services("tts", "motion", "asr") as address:
        yield address


@pytest.fixture(scope="module")
def avatar(services: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The avatar server's http:// address."""
    with running_avatar(services, tmp_path_factory.mktemp("avatar") / "ledger.sqlite") as (
            url, _app):
        yield url.replace("ws://", "http://", 1).removesuffix("/v1/avatar")


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLLM]:
    with scripted_llm(Text("Hello!")) as scripted:
        for name, value in scripted.env().items():
            monkeypatch.setenv(name, value)
        yield scripted


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KANTOKU_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spoken_wav(path: Path, *parts: str | float) -> Path:
    """A 16-bit mono WAV of the Piper voice saying each text part, with a float part as that
    many seconds of silence."""
    from kantoku.services.tts.factory import build_backends

    piper = build_backends(["piper"])[0]
    voice = piper.voices()[0]
    rate = voice.sample_rate_hz
    pieces = []
    for part in parts:
        if isinstance(part, float):
            pieces.append(np.zeros(int(rate * part), np.int16))
        else:
            pieces.extend(s.pcm.astype(np.int16)
                          for s in piper.synthesize(part, voice.voice_id, 1.0))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate(pieces).astype("<i2").tobytes())
    return path


def launch(playwright: Playwright, microphone: Path | None = None) -> Browser:
    """Chromium with a fake microphone: the WAV once then silence, or Chromium's beep."""
    args = list(CHROMIUM_ARGS)
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}%noloop")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)


def hooks(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("""() => { const a = window.kantokuAvatar; return {
        state: a.state, playing: a.playing, mouth: a.mouthOpen(), sources: a.sourcesActive,
        chunks: a.chunksScheduled, statesSeen: a.statesSeen}; }"""))


@pytest.mark.slow  # about 30 s: the WAV plays in real time
def test_a_spoken_question_is_answered_aloud_and_a_second_one_cuts_it_off(
        playwright: Playwright, avatar: str, llm: ScriptedLLM, screenshots: Path,
        tmp_path: Path) -> None:
    llm.script = [Text(STORY, every_s=0.01), Text(TIME)]
    microphone = spoken_wav(tmp_path / "mic.wav", 0.8, QUESTION, PAUSE_S, CUT_IN, 5.0)
    browser = launch(playwright, microphone)
    try:
        page = browser.new_context(base_url=avatar, locale="en-US",
                                   viewport={"width": 1280, "height": 820}).new_page()
        page.on("pageerror", lambda error: pytest.fail(f"the page threw: {error}"))
        page.goto("/?persona=joe")
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "listening", timeout=30_000)
        expect(page.locator("#persona-name")).to_have_text("Joe")
        expect(page.locator("#models")).to_contain_text("scripted-1")
        expect(page.locator("#llm-note")).to_be_hidden()

        # The microphone starts playing the WAV: the question is heard and written down.
        page.locator("#mic").click()
        expect(page.locator("#mute")).to_be_visible()
        you = page.locator("#log li.you")
        expect(you.first).to_contain_text(re.compile(r"tell me a story", re.I),
                                          timeout=HEARD)

        # The answer streams in as text and plays aloud; the mouth moves with the audio.
        them = page.locator("#log li.them")
        expect(them.first).to_contain_text("here is a story", timeout=ANSWERED)
        page.wait_for_function("kantokuAvatar.playing", timeout=ANSWERED)
        expect(status).to_have_attribute("data-state", "talking")
        page.wait_for_function("kantokuAvatar.playing && kantokuAvatar.mouthOpen() > 0.3",
                               timeout=5_000)
        page.wait_for_function("kantokuAvatar.playing && kantokuAvatar.mouthOpen() < 0.1",
                               timeout=5_000)
        playing = hooks(page)
        assert playing["chunks"] > 0 and playing["sources"] > 0, playing

        # The second utterance barges in: the answer stops at once and is marked cut.
        page.wait_for_function("kantokuAvatar.eventsSeen.includes('interrupted')",
                               timeout=HEARD)
        stopped = hooks(page)
        assert stopped["state"] == "interrupted", stopped
        expect(status).to_have_text("interrupted")
        assert not stopped["playing"] and stopped["sources"] == 0 and stopped["mouth"] == 0, \
            stopped
        expect(them.first).to_have_class(re.compile("interrupted"))
        expect(them.first.locator(".cut")).to_have_text("(interrupted)")
        assert "talking" in stopped["statesSeen"], stopped
        # What cut in is heard too, and answered.
        expect(you.nth(1)).to_contain_text(re.compile(r"time is it", re.I), timeout=HEARD)
        expect(them.nth(1)).to_contain_text("quarter past three", timeout=ANSWERED)
        page.screenshot(path=str(screenshots / "avatar-interrupted.png"))
        assert len(llm.chats()) == 2

        # Muted, the page sends no more microphone audio.
        page.locator("#mute").click()
        expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#mic-state")).to_have_text("mic muted")
        sent = page.evaluate("kantokuAvatar.micFramesSent")
        page.wait_for_timeout(500)
        assert page.evaluate("kantokuAvatar.micFramesSent") == sent
    finally:
        browser.close()


def test_a_typed_question_is_answered_and_the_mouth_rests_after(
        playwright: Playwright, avatar: str, llm: ScriptedLLM, screenshots: Path) -> None:
    llm.script = [Text(BELL_REPLY, every_s=0.01)]
    browser = launch(playwright)
    try:
        page = browser.new_context(base_url=avatar, locale="ja-JP",
                                   viewport={"width": 1280, "height": 820}).new_page()
        page.on("pageerror", lambda error: pytest.fail(f"the page threw: {error}"))
        page.goto("/?persona=bell")
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "listening", timeout=30_000)
        expect(status).to_have_text("聞いています")
        expect(page.locator("#persona-name")).to_have_text("ベル")

        box = page.locator("#say input")
        box.fill("元気？")
        box.press("Enter")
        expect(page.locator("#log li.you")).to_have_text(re.compile("元気？"))
        them = page.locator("#log li.them")
        expect(them).to_contain_text("今日はいい天気だね", timeout=ANSWERED)
        page.wait_for_function("kantokuAvatar.playing && kantokuAvatar.mouthOpen() > 0.3",
                               timeout=ANSWERED)
        expect(status).to_have_text("話しています")
        page.screenshot(path=str(screenshots / "avatar.png"))

        # When the answer has played, the status goes back to listening and the mouth rests.
        expect(status).to_have_attribute("data-state", "listening", timeout=ANSWERED)
        ended = hooks(page)
        assert not ended["playing"] and ended["mouth"] == 0 and ended["sources"] == 0, ended
        assert ended["statesSeen"][-3:] == ["thinking", "talking", "listening"], ended
        expect(them).to_have_text(re.compile(BELL_REPLY))
    finally:
        browser.close()


def test_behind_a_token_the_page_asks_for_it_once(
        playwright: Playwright, avatar: str, llm: ScriptedLLM,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_AUTH_TOKEN", "s3cret-token")
    browser = launch(playwright)
    try:
        page = browser.new_context(base_url=avatar, locale="en-US").new_page()
        page.on("pageerror", lambda error: pytest.fail(f"the page threw: {error}"))
        page.goto("/?persona=joe")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#status")).to_have_attribute("data-state", "closed")
        dialog.locator("[name=token]").fill("not-it")
        dialog.locator("button[type=submit]").click()
        expect(dialog.locator("[data-error-for=token]")).to_have_text(
            "That token is not right; try again.")
        dialog.locator("[name=token]").fill("s3cret-token")
        dialog.locator("button[type=submit]").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#status")).to_have_attribute("data-state", "listening")
        expect(page.locator("#error")).to_be_empty()
        # The cookie opens the next conversation without asking.
        page.reload()
        expect(page.locator("#status")).to_have_attribute("data-state", "listening")
        expect(dialog).to_be_hidden()
    finally:
        browser.close()


def test_each_viseme_has_its_own_mouth(playwright: Playwright, avatar: str,
                                       llm: ScriptedLLM) -> None:
    """The page's mouth shapes for the 15 Oculus visemes, as the renderer blends them."""
    browser = launch(playwright)
    try:
        page = browser.new_context(base_url=avatar).new_page()
        page.goto("/?persona=joe")
        page.wait_for_function("kantokuAvatar.visemeNames.length > 0")
        shapes = page.evaluate("""async () => {
            const { mouthShape } = await import('/static/renderer.js');
            const names = kantokuAvatar.visemeNames;  // from the server's `visemes` event
            const one = (i) => names.map((_, j) => (i === j ? 1 : 0));
            return {names, shapes: Object.fromEntries(names.map((n, i) =>
                [n, mouthShape(names, one(i))])),
                blend: mouthShape(names, names.map((n) => (n === 'aa' || n === 'ou' ? 0.5 : 0))),
                rest: mouthShape(names, null)};
        }""")
    finally:
        browser.close()
    names, by_name = shapes["names"], shapes["shapes"]
    assert names == ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E",
                     "ih", "oh", "ou"]
    assert by_name["sil"]["open"] == by_name["PP"]["open"] == shapes["rest"]["open"] == 0
    assert max(by_name, key=lambda n: by_name[n]["open"]) == "aa"
    assert max(by_name, key=lambda n: by_name[n]["round"]) == "ou"
    assert max(by_name, key=lambda n: by_name[n]["wide"]) == "E"
    assert len({(s["open"], s["wide"], s["round"]) for s in by_name.values()}) >= 12
    blend = shapes["blend"]
    assert by_name["ou"]["open"] < blend["open"] < by_name["aa"]["open"]
