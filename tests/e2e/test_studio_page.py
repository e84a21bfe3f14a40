"""The studio's page in a real browser (the system's Chromium, driven by Playwright) against a
real studio and real services: a person writes a brief, reviews the storyboard, drags a cut,
edits a prompt, approves, watches the shots render, plays the video and downloads the rights
report; on a phone too, in Japanese, and behind a token.

`KANTOKU_SCREENSHOTS=docs` keeps the plan, the finished job and the phone's view as
docs/studio-plan.png, studio-done.png and studio-phone.png (else they go to a temporary folder).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.integration.test_jobs import standalone_services
from tests.integration.test_studio_api import BRIEF, running_studio, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PLANNED, FINISHED = 90_000, 180_000  # ms: a heuristic plan; a short job rendered

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: install the "
                       "distribution's chromium package to drive the studio's page"),
]

@pytest.fixture(scope="module")
def studio() -> Iterator[str]:
    # The briefs have no dialogue: the jobs call the image and video services only.
    with standalone_services("image", "video") as services, running_studio(services) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def api(studio: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=studio, timeout=30) as client:
        yield client


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KANTOKU_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def open_page(browser: Browser, studio: str) -> Iterator[Callable[..., Page]]:
    """Opens the studio's page in a new browser context (closed after the test, so no event
    stream outlives it); a script error on the page fails the test."""
    contexts: list[BrowserContext] = []

    def opened(wait: bool = True, **options: Any) -> Page:
        context = browser.new_context(base_url=studio, accept_downloads=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: pytest.fail(f"the page threw: {error}"))
        page.goto("/")
        if wait:
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
        return page

    yield opened
    for context in contexts:
        context.close()


def job_id_of(page: Page) -> str:
    return str(page.evaluate("location.hash")).rsplit("/", 1)[-1]


def fill_brief(page: Page, title: str, duration: str | None = "8") -> None:
    form = page.locator("#brief")
    form.locator("[name=title]").fill(title)
    form.locator("[name=logline]").fill(str(BRIEF["logline"]))
    if duration is not None:
        form.locator("[name=duration_s]").fill(duration)
    form.locator("[name=characters]").fill("Mei: yellow raincoat")
    form.locator("[name=locations]").fill("night market\nriver bank")
    form.locator("[name=aspect]").select_option("16:9")
    form.locator("[name=resolution]").select_option("480p")


def wait_for_previews(api: httpx.Client, job_id: str, timeout: float = 60) -> None:
    """Until every shot's storyboard preview is drawn."""
    shots = api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]["shots"]
    deadline = time.monotonic() + timeout
    for shot in shots:
        while True:
            answer = api.get(f"/v1/jobs/{job_id}/shots/{shot['id']}/preview")
            if answer.status_code == 200:
                break
            assert answer.json()["reason"] == "PREVIEW_NOT_READY", answer.text
            assert time.monotonic() < deadline, f"{shot['id']}: no preview yet"
            time.sleep(0.2)


def settled(page: Page) -> None:
    """The storyboard's pictures loaded and faded in, before a screenshot."""
    page.wait_for_function("[...document.querySelectorAll('#storyboard img')].every("
                           "i => !i.getAttribute('src') || i.complete)")
    page.wait_for_timeout(400)


def drag_cut(page: Page, duration_s: float, from_s: float, to_s: float) -> None:
    strip = page.locator("#strip")
    strip.scroll_into_view_if_needed()
    box = strip.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] - 15  # on the shots' row

    def x(t: float) -> float:
        return box["x"] + box["width"] * t / duration_s

    page.mouse.move(x(from_s), y)
    page.mouse.down()
    page.mouse.move(x(to_s), y, steps=10)
    page.mouse.up()


def test_a_brief_becomes_a_reviewed_edited_approved_video(
        open_page: Callable[..., Page], api: httpx.Client, screenshots: Path) -> None:
    page = open_page(locale="en-US", viewport={"width": 1360, "height": 900})
    # With no endpoint set, the chat says plainly that kantoku's own small model answers.
    expect(page.locator("#chat-model")).to_contain_text(
        "Answered by smollm2-135m-instruct, the small model built into kantoku", timeout=60_000)

    # A brief without a title is refused, and the page says which field to fix.
    page.locator("#brief button[type=submit]").click()
    refused = page.locator("[data-error-for=brief]")
    expect(refused).to_contain_text("title")
    expect(page.locator("#brief [name=title]")).to_have_attribute("aria-invalid", "true")

    fill_brief(page, "Night market")
    page.locator("#brief button[type=submit]").click()
    expect(refused).to_be_empty()
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "awaiting_review", timeout=PLANNED)
    expect(status).to_have_text("awaiting review")
    job_id = job_id_of(page)
    plan = api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]
    shots = plan["shots"]
    assert len(shots) >= 2, "the drag needs a cut"
    expect(page.locator("#storyboard li")).to_have_count(len(shots))
    expect(page.locator("#storyboard li").first).to_contain_text(shots[0]["id"])
    expect(page.locator("#policy")).to_contain_text("clears all")
    expect(page.locator("#job-summary")).to_contain_text(f"{len(shots)} shots")

    # Drag the first cut: the plan's next version has it where it was dropped (on a frame, or
    # on the song's beat), and the two shots still meet.
    first, second = shots[0], shots[1]
    room = second["end_s"] - first["end_s"] - 0.5
    target = first["end_s"] + min(0.4, room) if room > 0.2 else first["end_s"] - 0.4
    drag_cut(page, plan["duration_s"], first["end_s"], target)
    expect(page.locator("#strip-note")).to_contain_text(f"Cut after {first['id']}")
    moved = api.get(f"/v1/jobs/{job_id}/plan").json()
    assert moved["version"] == 2
    cut = moved["plan"]["shots"][0]["end_s"]
    assert abs(cut - target) < 0.1 and cut != first["end_s"], (cut, target)
    assert moved["plan"]["shots"][1]["start_s"] == cut
    # Nothing else changed: 64-bit seeds survive the page exactly.
    assert [s["seed"] for s in moved["plan"]["shots"]] == [s["seed"] for s in shots]
    assert any(s["seed"] > 2**53 for s in shots), "the seeds are small: nothing is shown"
    expect(page.locator("#strip-note")).to_contain_text(f"{cut:.2f} s")
    expect(page.locator("#storyboard li").first).to_contain_text(f"{cut:.2f} s")

    # The keyboard moves a cut too: the second shot picked on the strip, its end three frames on.
    strip = page.locator("#strip")
    box = strip.bounding_box()
    assert box is not None
    middle = (second["start_s"] + second["end_s"]) / 2 + 0.2
    strip.click(position={"x": box["width"] * middle / plan["duration_s"],
                          "y": box["height"] - 15})
    expect(page.locator("#editor-title")).to_have_text(f"Edit {second['id']}")
    strip.focus()
    for _ in range(3):
        strip.press("ArrowRight")
    strip.press("Enter")
    expect(page.locator("#strip-note")).to_contain_text(f"Cut after {second['id']}")
    keyed = api.get(f"/v1/jobs/{job_id}/plan").json()
    assert keyed["version"] == 3
    assert abs(keyed["plan"]["shots"][1]["end_s"] - (second["end_s"] + 3 / plan["fps"])) < 0.04

    # Click the first shot and change its prompt.
    page.locator(f"#storyboard li[data-shot={first['id']}] .frame").click()
    editor = page.locator("#shot-editor")
    expect(editor).to_be_visible()
    expect(editor.locator("h3")).to_have_text(f"Edit {first['id']}")
    editor.locator("[name=image_prompt]").fill("lanterns swaying above the stalls")
    editor.locator("button[type=submit]").click()
    expect(page.locator("#editor-note")).to_contain_text("plan v4")
    edited = api.get(f"/v1/jobs/{job_id}/plan").json()
    assert edited["plan"]["shots"][0]["image_prompt"] == "lanterns swaying above the stalls"

    # A name the brief does not have is refused beside the characters field; nothing changes.
    editor.locator("[name=characters]").fill("Mei, Nobody")
    editor.locator("button[type=submit]").click()
    refusal = editor.locator("[data-error-for=characters]")
    expect(refusal).to_contain_text("Nobody")
    expect(refusal).to_contain_text("not in the brief")
    expect(editor.locator("[name=characters]")).to_have_attribute("aria-invalid", "true")
    assert api.get(f"/v1/jobs/{job_id}/plan").json()["version"] == 4
    settled(page)
    page.screenshot(path=str(screenshots / "studio-plan.png"), full_page=True)

    # Approve, and watch the shots fill in as they finish.
    page.evaluate("""() => {
        window.progressSeen = [];
        const text = document.querySelector('#progress-text');
        new MutationObserver(() => window.progressSeen.push(text.textContent))
            .observe(text, {childList: true, characterData: true, subtree: true});
    }""")
    page.locator("#approve").click()
    expect(page.locator("#approve")).to_be_hidden()
    expect(page.locator("#progress")).to_be_visible()
    expect(status).to_have_attribute("data-status", "done", timeout=FINISHED)
    expect(page.locator("#storyboard li[data-state=done]")).to_have_count(len(shots))
    seen = [int(text.split(" of ")[0]) for text in page.evaluate("window.progressSeen")
            if " of " in text]
    assert seen == sorted(seen) and seen[-1] == len(shots), seen
    assert any(0 < count < len(shots) for count in seen), f"no shot finished on its own: {seen}"
    expect(page.locator("#progress-bar")).to_have_attribute("value", "1")

    # The video plays in the page, as long as the plan; every output is a download.
    job = wait_for(api, job_id, "done")
    page.wait_for_function("document.querySelector('#video').readyState >= 1", timeout=30_000)
    video = page.evaluate("(() => { const v = document.querySelector('#video');"
                          " return {duration: v.duration, error: v.error && v.error.code}; })()")
    assert video["error"] is None
    assert abs(video["duration"] - job["plan"]["duration_s"]) < 0.1, video
    links = page.locator("#downloads a")
    names = set(links.evaluate_all("links => links.map(a => a.textContent)"))
    assert {"video.mp4", "timeline.otio", "rights.html", "record.json"} <= names
    assert names == {o["name"] for o in job["outputs"]}
    expect(page.locator("#policy .badge").first).to_have_text("publish: yes")
    with page.expect_download() as download_info:
        page.locator("#downloads a[download='rights.html']").click()
    download = download_info.value
    assert download.suggested_filename == "rights.html"
    assert Path(download.path()).read_bytes() == \
        api.get(f"/v1/jobs/{job_id}/files/rights.html").content
    page.evaluate("""() => new Promise((seeked) => {
        const video = document.querySelector('#video');
        video.addEventListener('seeked', seeked, {once: true});
        video.currentTime = 4;
    })""")
    page.wait_for_function("document.querySelector('#video').readyState >= 3")  # frames decode
    page.locator("#editor-close").click()
    page.evaluate("window.scrollTo(0, 0)")
    settled(page)
    page.wait_for_timeout(1500)  # the player's loading spinner fades out
    page.screenshot(path=str(screenshots / "studio-done.png"), full_page=True)


@pytest.mark.slow  # a whole song's job in the browser
def test_a_song_and_lyrics_upload_in_japanese_and_a_cancel(
        open_page: Callable[..., Page], api: httpx.Client, tmp_path: Path,
        screenshots: Path) -> None:
    from tests.conftest import make_song

    song = make_song(tmp_path / "song.wav", 6)
    lyrics = tmp_path / "song.lrc"
    lyrics.write_text("[00:01.00]lanterns in the rain\n[00:03.50]the night is ours\n")
    page = open_page(locale="ja-JP", viewport={"width": 1280, "height": 900})
    form = page.locator("#brief")
    expect(form.locator("button[type=submit]")).to_have_text("計画を立てる")  # from the browser

    fill_brief(page, "夜市", duration=None)
    form.locator("[name=song]").set_input_files(str(song))
    expect(page.locator("#song-rights")).to_be_visible()
    expect(form.locator("[name=duration_s]")).to_be_disabled()  # the song sets the length
    form.locator("[name=lyrics]").set_input_files(str(lyrics))
    form.locator("[name=song_holder]").fill("kantoku project")
    form.locator("[name=song_license]").fill("CC0-1.0")
    form.locator("[name=song_commercial]").check()
    form.locator("button[type=submit]").click()
    status = page.locator("#job-status")
    expect(status).to_have_attribute("data-status", "awaiting_review", timeout=PLANNED)
    expect(status).to_have_text("確認待ち")
    board = page.locator("#storyboard")
    expect(board).to_contain_text("アイレベル")  # the shot vocabulary as Japanese crews say it
    expect(page.locator("#chat-model")).to_contain_text("回答するのは")
    expect(board).to_contain_text("lanterns in the rain")
    expect(board).to_contain_text("the night is ours")
    expect(page.locator("#job-summary")).to_contain_text("6.00 秒")
    expect(page.locator("#timeline")).to_be_visible()

    # A cut dragged on a song lands on a beat.
    job_id = job_id_of(page)
    plan = api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]
    first = plan["shots"][0]
    target = first["end_s"] + min(0.3, plan["shots"][1]["end_s"] - first["end_s"] - 0.6)
    drag_cut(page, plan["duration_s"], first["end_s"], target)
    expect(page.locator("#strip-note")).to_contain_text(first["id"])
    cut = api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]["shots"][0]["end_s"]
    beats = api.get(f"/v1/jobs/{job_id}/timeline").json()["beats_s"]
    assert min(abs(cut - beat) for beat in beats) < 1 / plan["fps"] + 1e-6, (cut, beats)
    expect(page.locator("#strip-note")).to_contain_text("拍")
    wait_for_previews(api, job_id)
    settled(page)
    page.screenshot(path=str(screenshots / "studio-song.png"), full_page=True)

    page.locator("#cancel").click()
    expect(status).to_have_attribute("data-status", "cancelled")
    expect(status).to_have_text("取り消し")
    expect(page.locator("#approve")).to_be_hidden()
    page.locator("#lang").click()  # to English, and it stays so
    expect(status).to_have_text("cancelled")
    expect(board).to_contain_text("eye level")
    expect(page.locator("#chat-model")).to_contain_text("Answered by")
    expect(form.locator("button[type=submit]")).to_have_text("Plan it")
    page.reload()
    expect(page.locator("#job-status")).to_have_text("cancelled")


def test_the_page_fits_a_phone(open_page: Callable[..., Page], api: httpx.Client,
                               screenshots: Path) -> None:
    created = api.post("/v1/jobs", json={"brief": {**BRIEF, "seed": 11, "duration_s": 8},
                                         "planner": "heuristic"})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    wait_for(api, job_id, "awaiting_review")
    wait_for_previews(api, job_id)
    page = open_page(locale="en-US", viewport={"width": 390, "height": 844},
                     is_mobile=True, has_touch=True, device_scale_factor=2)

    def overflow() -> int:
        return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))

    assert overflow() <= 0, "the empty page is wider than the phone"
    page.goto(f"/#/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "awaiting_review")
    expect(page.locator("#storyboard li").first).to_be_visible()
    assert overflow() <= 0, "the plan is wider than the phone"
    settled(page)
    page.screenshot(path=str(screenshots / "studio-phone.png"))
    page.locator("#storyboard li .frame").first.tap()
    expect(page.locator("#shot-editor")).to_be_visible()
    assert overflow() <= 0, "the shot editor is wider than the phone"
    job_box, brief_box = page.locator("#job").bounding_box(), page.locator("#brief").bounding_box()
    assert job_box and brief_box and job_box["y"] < brief_box["y"], "the open job comes first"
    strip = page.locator("#strip").bounding_box()
    assert strip and strip["width"] <= 390


def test_the_page_asks_for_the_token_once(open_page: Callable[..., Page], studio: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KANTOKU_AUTH_TOKEN", "s3cret-token")
    assert httpx.get(f"{studio}/").status_code == 200  # the page itself needs no token
    assert httpx.get(f"{studio}/static/studio.js").status_code == 200
    page = open_page(wait=False, locale="en-US")
    context = page.context
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    dialog.locator("[name=token]").fill("wrong")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator("[data-error-for=token]")).to_have_text(
        "That token is not right; try again.")
    dialog.locator("[name=token]").fill("s3cret-token")
    dialog.locator("button[type=submit]").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    cookie = next(c for c in context.cookies() if c["name"] == "kantoku_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "kantoku_token" not in page.evaluate("document.cookie")  # out of the scripts' reach
    page.reload()  # the cookie holds: no second question
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(dialog).to_be_hidden()
    assert httpx.get(f"{studio}/v1/jobs").status_code == 401


def test_a_chat_plans_a_video_and_its_proposal_is_a_button(open_page: Callable[..., Page],
                                                           api: httpx.Client,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.scripted_llm import Call, Text, calls, scripted_llm

    brief = {"title": "Lanterns", "logline": "Mei walks under lanterns", "duration_s": 6,
             "locations": ["night market"], "aspect": "16:9", "resolution": "480p",
             "characters": [{"name": "Mei", "description": "yellow raincoat"}]}
    answer = "The plan awaits your review; approve it with the button."
    with scripted_llm(Text("ok")) as llm:  # a real OpenAI-compatible server, scripted
        for name, value in llm.env().items():
            monkeypatch.setenv(name, value)
        llm.script[:] = [calls(Call("update_brief", brief)), calls(Call("start_job", {})),
                         calls(Call("propose", {"action": "approve"})), Text(answer)]
        page = open_page(locale="en-US", viewport={"width": 1280, "height": 900})
        chat = page.locator("#chat")
        expect(chat).to_be_visible()
        expect(page.locator("#chat-model")).to_have_text(  # who answers, said at once
            "Answered by scripted-1, at the OpenAI-compatible endpoint this studio is set up "
            "with.")
        chat.locator("textarea").fill("Six seconds of Mei under lanterns; start it")
        chat.locator("textarea").press("Enter")
        expect(chat.locator(".msg.user p")).to_have_text(
            "Six seconds of Mei under lanterns; start it")
        reply = chat.locator(".msg.agent").last
        expect(reply).to_contain_text(answer, timeout=PLANNED)
        expect(reply.locator(".change")).to_have_count(2)  # the brief, then the job
        # The job the chat started is open, awaiting review; the agent approved nothing.
        status = page.locator("#job-status")
        expect(status).to_have_attribute("data-status", "awaiting_review", timeout=PLANNED)
        expect(page.locator("#job-title")).to_have_text("Lanterns")
        job_id = job_id_of(page)
        assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_review"
        reply.locator("button", has_text="Approve the plan").click()
        expect(status).to_have_attribute("data-status", "done", timeout=FINISHED)


def test_a_shot_of_a_finished_job_renders_again(open_page: Callable[..., Page],
                                                api: httpx.Client) -> None:
    created = api.post("/v1/jobs", json={"brief": {**BRIEF, "seed": 12, "duration_s": 6},
                                         "planner": "heuristic"})
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    wait_for(api, job_id, "awaiting_review")
    assert api.post(f"/v1/jobs/{job_id}:approve").status_code == 202
    before = wait_for(api, job_id, "done", timeout=FINISHED / 1000)
    shot = before["plan"]["shots"][1]

    page = open_page(locale="en-US", viewport={"width": 1280, "height": 900})
    page.goto(f"/#/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "done")
    page.locator(f"#storyboard li[data-shot={shot['id']}] .frame").click()
    editor = page.locator("#shot-editor")
    expect(editor.locator("[name=shot_size]")).to_be_disabled()  # the plan is rendered
    expect(editor.locator("button[type=submit]")).to_be_hidden()
    editor.locator("[name=seed]").fill(str(shot["seed"] + 1))
    editor.locator("#regenerate").click()
    # The page follows the job's next version until it is done, and plays its video.
    expect(page).not_to_have_url(re.compile(f"#/jobs/{job_id}$"))
    next_id = job_id_of(page)
    expect(page.locator("#video")).to_have_attribute(
        "src", re.compile(f"^/v1/jobs/{next_id}/files/video.mp4"), timeout=FINISHED)
    expect(page.locator("#job-status")).to_have_attribute("data-status", "done")
    again = api.get(f"/v1/jobs/{next_id}").json()
    assert again["status"] == "done"
    assert again["plan"]["shots"][1]["seed"] == shot["seed"] + 1
