"""The studio's chat on a real uvicorn server: a scripted OpenAI-compatible model (real HTTP,
streamed tool calls) works on the brief, the job and its plan through the chat's tools, and the
embedded SmolLM2 answers when no endpoint is configured."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_studio_api import BRIEF, new_job, wait_for
from tests.scripted_llm import Call, Endless, Error, ScriptedLLM, Text, calls, scripted_llm

pytestmark = pytest.mark.integration

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLLM]:
    """A scripted model the studio's chat uses (tests fill `llm.script`)."""
    with scripted_llm(Text("ok")) as scripted:
        for name, value in scripted.env().items():
            monkeypatch.setenv(name, value)
        yield scripted


def new_chat(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/chats", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def say(api: httpx.Client, chat_id: str, text: str) -> Events:
    """The events of one reply, in order."""
    events: Events = []
    name, data = "", ""
    with api.stream("POST", f"/v1/chats/{chat_id}/messages", json={"text": text},
                    timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif not line and data:
                events.append((name, json.loads(data)))
                name, data = "", ""
    return events


def named(events: Events, name: str) -> list[dict[str, Any]]:
    return [data for event, data in events if event == name]


def reply(events: Events) -> str:
    return "".join(d["text"] for d in named(events, "token"))


def tool_answers(request: dict[str, Any]) -> list[dict[str, Any]]:
    """What the tools answered, as the model was shown it in `request`."""
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


def chat_calls(home: Path, job_id: str) -> list[dict[str, Any]]:
    from kantoku.planner.rights.ledger import SqliteLedger

    entries = SqliteLedger(home / "ledger.sqlite").entries(job_id)
    return [e["data"] for e in entries
            if e["kind"] == "llm_call" and e["data"].get("purpose") == "chat"]


def test_a_brief_in_japanese_becomes_a_job_awaiting_review(api: httpx.Client, llm: ScriptedLLM,
                                                          home: Path) -> None:
    answer = "ジョブを始めました。6秒の計画がレビューを待っています。"
    mei = {"name": "メイ", "description": "黄色い雨合羽"}
    llm.script[:] = [
        calls(Call("update_brief", {"title": "夜市", "logline": "メイが夕暮れの夜市を歩く",
                                    "duration_s": 6, "locations": ["夜市"],
                                    "characters": [mei]})),
        calls(Call("start_job", {})),
        Text(answer),
    ]
    chat = new_chat(api, language="ja")
    assert (chat["job_id"], chat["model"], chat["endpoint"]) == (None, "scripted-1", "configured")
    assert chat["messages"] == []

    events = say(api, chat["id"], "夕暮れの夜市を歩くメイの6秒の動画を作って、ジョブを開始して")
    names = [name for name, _ in events]
    assert names[-1] == "done" and "error" not in names
    brief_change, job_change = named(events, "change")
    assert brief_change["kind"] == "brief"
    assert {d["field"] for d in brief_change["diff"]} >= {"title", "logline", "duration_s"}
    assert job_change["kind"] == "job" and job_change["job_id"]
    job_id = job_change["job_id"]
    done = named(events, "done")[0]
    assert done["job_id"] == job_id
    assert done["reply"] == reply(events) == answer

    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "awaiting_review"  # start_job answered once the plan was ready
    assert job["brief"]["title"] == "夜市" and job["brief"]["duration_s"] == 6
    assert job["plan"]["shots"] and job["plan"]["duration_s"] == 6

    # The model was told in Japanese terms and saw each tool's answer.
    first, _, last = llm.chats()[-3:]
    assert "Japanese" in first["messages"][0]["content"]
    assert {t["function"]["name"] for t in first["tools"]} >= {"update_brief", "start_job",
                                                               "edit_shot", "propose"}
    started = tool_answers(last)[-1]
    assert started["job_id"] == job_id and started["status"] == "awaiting_review"

    # Every call is in the job's ledger, those made before the job included.
    ledgered = chat_calls(home, job_id)
    assert len(ledgered) == 3
    assert [c["tool_calls"] for c in ledgered] == [
        [{"name": "update_brief", "ok": True}], [{"name": "start_job", "ok": True}], []]
    assert all(c["model"] == "scripted-1" and c["endpoint"] == "configured" and c["ok"]
               and c["latency_ms"] >= 0 and c["completion_tokens"] > 0 for c in ledgered)

    transcript = api.get(f"/v1/chats/{chat['id']}").json()
    assert transcript["job_id"] == job_id
    assert [m["role"] for m in transcript["messages"]] == ["user", "assistant"]
    assert [c["kind"] for c in transcript["messages"][1]["changes"]] == ["brief", "job"]


def test_a_plain_first_message_becomes_the_logline_and_start_works(
        api: httpx.Client, llm: ScriptedLLM) -> None:
    llm.script[:] = [Text("What a lovely idea."), calls(Call("start_job", {})), Text("Started.")]
    chat = new_chat(api, language="en")
    text = "A lighthouse keeper feeds the gulls at dawn"
    events = say(api, chat["id"], text)
    change = named(events, "change")[0]
    assert change["kind"] == "brief"
    assert {"field": "logline", "from": None, "to": text} in change["diff"]
    assert named(events, "done")[0]["reply"] == reply(events) == (
        "What a lovely idea.\n\n(I kept your message as the brief's logline; say \"start the "
        "job\" to plan it.)")
    brief = api.get(f"/v1/chats/{chat['id']}").json()["brief"]
    assert brief["logline"] == text and brief["title"] and brief["duration_s"] == 15

    events = say(api, chat["id"], "start the job")
    job_id = named(events, "done")[0]["job_id"]
    assert job_id and named(events, "change")[0]["kind"] == "job"
    job = wait_for(api, job_id, "awaiting_review")
    assert job["brief"]["logline"] == text and job["plan"]["duration_s"] == 15


def test_an_edit_refused_by_the_plan_rules_is_explained(api: httpx.Client,
                                                        llm: ScriptedLLM) -> None:
    job_id = new_job(api)["id"]
    wait_for(api, job_id, "awaiting_review")

    def explain(body: dict[str, Any]) -> Text:
        refusal = tool_answers(body)[-1]
        return Text(f"I could not change it: {'; '.join(refusal['problems'])}")

    llm.script[:] = [calls(Call("edit_shot", {"shot_id": "s001",
                                              "changes": {"characters": ["Nobody"]}})),
                     explain,
                     calls(Call("edit_shot", {"shot_id": "s001",
                                              "changes": {"image_prompt": "lanterns swaying"}})),
                     Text("Shot s001 now shows lanterns.")]
    chat = new_chat(api, job_id=job_id)
    assert chat["brief"]["title"] == BRIEF["title"]
    events = say(api, chat["id"], "Put Nobody in the first shot")
    assert named(events, "change") == []
    answer = named(events, "done")[0]["reply"]
    assert answer.startswith("I could not change it: s001.characters:") and "Nobody" in answer
    assert api.get(f"/v1/jobs/{job_id}/plan").json()["version"] == 1

    events = say(api, chat["id"], "Show lanterns in the first shot instead")
    change = named(events, "change")[0]
    assert change["kind"] == "plan" and change["job_id"] == job_id and change["version"] == 2
    assert change["diff"][0]["shot_id"] == "s001" and change["diff"][0]["fields"] == \
        ["image_prompt"]
    plan = api.get(f"/v1/jobs/{job_id}/plan").json()
    assert plan["version"] == 2 and plan["plan"]["shots"][0]["image_prompt"] == "lanterns swaying"


def test_approval_is_proposed_never_done(api: httpx.Client, llm: ScriptedLLM) -> None:
    job_id = new_job(api)["id"]
    wait_for(api, job_id, "awaiting_review")
    llm.script[:] = [calls(Call("propose", {"action": "regenerate", "shot_id": "s001"}),
                           Call("propose", {"action": "approve",
                                            "summary": "render the night market"})),
                     Text("Press Approve to render it.")]
    chat = new_chat(api, job_id=job_id)
    events = say(api, chat["id"], "Looks good, render it")
    proposal, = named(events, "proposal")
    assert proposal == {"action": "approve", "job_id": job_id,
                        "summary": "render the night market"}
    refused, proposed = tool_answers(llm.chats()[-1])
    assert "once the job is done" in refused["error"]  # a shot regenerates after the render
    assert proposed["ok"] and "nothing was started" in proposed["note"]
    time.sleep(0.5)
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_review"
    assert named(events, "done")[0]["proposals"] == [proposal]


def test_garbage_from_the_model_is_answered_and_the_chat_goes_on(
        api: httpx.Client, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    llm.script[:] = [calls(Call("update_brief", "{not json"), Call("launch_rockets", {}),
                           Call("edit_shot", {"shot": 1})),
                     Text("Sorry, that went wrong.")]
    chat = new_chat(api, language="en")
    events = say(api, chat["id"], "Make a video")
    assert named(events, "done")[0]["reply"].startswith("Sorry, that went wrong.\n\n(I kept")
    bad_json, unknown, bad_args = (a["error"] for a in tool_answers(llm.chats()[-1]))
    assert "update_brief are not JSON" in bad_json
    assert "no tool named 'launch_rockets'" in unknown and "start_job" in unknown
    assert "edit_shot do not fit" in bad_args and "shot_id" in bad_args
    # No tool call worked on the first message: the words became the logline all the same.
    assert named(events, "change")[0]["diff"][0]["to"] == "Make a video"

    # A model that never stops calling tools is stopped after four rounds, and answered for.
    llm.script[:] = [calls(Call("get_brief", {}))]
    before = len(llm.chats())
    events = say(api, chat["id"], "What is the brief?")
    assert len(llm.chats()) - before == 4
    assert "tools" not in llm.chats()[-1]  # the last round is offered none
    assert named(events, "done")[0]["reply"].startswith("Tell me about the video")

    # Endless text is cut off at max_tokens and said so; the next message is answered.
    monkeypatch.setenv("KANTOKU_LLM_MAX_TOKENS", "64")
    llm.script[:] = [Endless(), Text("Back again.")]
    events = say(api, chat["id"], "Hello?")
    error, = named(events, "error")
    assert error["reason"] == "LLM_RUNAWAY" and "max_tokens (64)" in error["detail"]
    assert llm.hung_up.wait(5)
    events = say(api, chat["id"], "Hello again")
    assert named(events, "done")[0]["reply"] == "Back again."
    # A server error is an error event that quotes it, not a failed request.
    llm.script[:] = [Error(500, "the GPU caught fire")]
    error, = named(say(api, chat["id"], "Still there?"), "error")
    assert error["reason"] == "LLM_FAILED" and "HTTP 500" in error["detail"]
    roles = [m["role"] for m in api.get(f"/v1/chats/{chat['id']}").json()["messages"]]
    assert roles == ["user", "assistant"] * 5


def test_a_director_who_hangs_up_leaves_the_chat_usable(api: httpx.Client,
                                                       llm: ScriptedLLM) -> None:
    llm.script[:] = [Endless(every_s=0.05), Text("Still here.")]
    chat = new_chat(api, language="en")
    with api.stream("POST", f"/v1/chats/{chat['id']}/messages",
                    json={"text": "Tell me a long story"}) as response:
        for line in response.iter_lines():
            if line.startswith("event: token"):
                break  # the page is closed mid-reply
    assert llm.hung_up.wait(10), "the model went on writing for nobody"
    deadline = time.monotonic() + 10
    while api.get(f"/v1/chats/{chat['id']}").json()["messages"][-1]["role"] != "assistant":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    events = say(api, chat["id"], "Hello?")
    assert named(events, "done")[0]["reply"] == "Still here."


def test_an_endpoint_that_refuses_tools_still_chats(api: httpx.Client,
                                                   llm: ScriptedLLM) -> None:
    def no_tools(body: dict[str, Any]) -> Error | Text:
        if "tools" in body:  # as llama-server answers without --jinja
            return Error(400, "tools param requires --jinja flag")
        return Text("A fine idea.")

    llm.script[:] = [no_tools]
    chat = new_chat(api, language="en")
    events = say(api, chat["id"], "Two kites over a beach, 5 seconds")
    assert named(events, "done")[0]["reply"] == (
        "A fine idea.\n\n(I kept your message as the brief's logline, 5 s long; add details as "
        'lines like "style: watercolour", or say "start the job" to plan it.)')
    assert [("tools" in r) for r in llm.chats()] == [True, False]
    # Without tools, the commands run without the model.
    events = say(api, chat["id"], "start the job")
    assert len(llm.chats()) == 2
    job = wait_for(api, named(events, "done")[0]["job_id"], "awaiting_review")
    assert job["brief"]["logline"] == "Two kites over a beach, 5 seconds"
    assert job["plan"]["duration_s"] == 5


def test_bad_requests_are_refused_naming_what_to_fix(
        api: httpx.Client, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = api.get("/v1/chats/chat-000000000000")
    assert missing.status_code == 404 and missing.json()["reason"] == "CHAT_NOT_FOUND"
    sent = api.post("/v1/chats/chat-000000000000/messages", json={"text": "hi"})
    assert sent.status_code == 404
    unknown_job = api.post("/v1/chats", json={"job_id": "nope"})
    assert unknown_job.status_code == 404 and unknown_job.json()["reason"] == "JOB_NOT_FOUND"
    language = api.post("/v1/chats", json={"language": "fr"})
    assert language.status_code == 400 and "language" in language.json()["detail"]

    chat = new_chat(api)
    for body in ({"text": "   "}, {"text": ""}):
        empty = api.post(f"/v1/chats/{chat['id']}/messages", json=body)
        assert empty.status_code == 400 and empty.json()["reason"] == "TEXT_EMPTY"
        assert empty.json()["field"] == "text"
    no_text = api.post(f"/v1/chats/{chat['id']}/messages", json={})
    assert no_text.status_code == 400 and "text" in no_text.json()["detail"]
    not_json = api.post(f"/v1/chats/{chat['id']}/messages", content=b"{",
                        headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert api.get(f"/v1/chats/{chat['id']}").json()["messages"] == []

    # A configured endpoint that does not answer: a chat cannot start, and says why.
    from kantoku.services._core.server import free_port

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    down = api.post("/v1/chats", json={})
    assert down.status_code == 503 and down.json()["reason"] == "LLM_UNAVAILABLE"
    assert "could not connect to the LLM" in down.json()["detail"]


def test_the_embedded_model_answers_when_no_endpoint_is_configured(
        api: httpx.Client, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    from kantoku.services.llm.catalog import EMBEDDED_LLM

    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "KANTOKU_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    chat = new_chat(api, language="en")
    assert (chat["model"], chat["endpoint"]) == (EMBEDDED_LLM, "embedded")
    idea = "A cat watches the rain from a window at night, 8 seconds."
    events = say(api, chat["id"], idea)
    done = named(events, "done")[0]
    assert done["reply"] == reply(events) != "" and done["model"] == EMBEDDED_LLM
    # Whatever it said, the idea is the draft's logline, and its length the brief's.
    brief = api.get(f"/v1/chats/{chat['id']}").json()["brief"]
    assert (brief["logline"], brief["duration_s"]) == (idea, 8)

    # It calls no tools; short commands run without it, and the reply says what happened.
    events = say(api, chat["id"], "style: watercolour\nlocations: window, rooftop")
    change, = named(events, "change")
    assert change["kind"] == "brief" and {d["field"] for d in change["diff"]} == \
        {"style", "locations"}
    assert "watercolour" in reply(events)
    events = say(api, chat["id"], "Start the job.")
    job_id = named(events, "done")[0]["job_id"]
    assert job_id and f"job {job_id}" in reply(events) and "awaits review" in reply(events)
    job = wait_for(api, job_id, "awaiting_review")
    assert job["brief"]["logline"] == idea and job["brief"]["style"] == "watercolour"
    assert job["plan"]["duration_s"] == 8
    events = say(api, chat["id"], "s001 camera_move: dolly_in")
    assert named(events, "change"), reply(events)
    assert named(events, "change")[0]["diff"][0]["fields"] == ["camera_move"]
    assert api.get(f"/v1/jobs/{job_id}/plan").json()["plan"]["shots"][0]["camera_move"] == \
        "dolly_in"
    events = say(api, chat["id"], "approve")
    assert named(events, "proposal")[0]["action"] == "approve"
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_review"
    # Its one model call (the first message) went to the job's ledger when the job started.
    called, = chat_calls(home, job_id)
    assert (called["model"], called["endpoint"], called["tools_offered"]) == \
        (EMBEDDED_LLM, "embedded", 0)
