"""The LLM planner against a real local HTTP server speaking OpenAI chat completions."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openai import AsyncOpenAI

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.heuristic import Section
from kantoku.planner.planning.llm import (
    LLMSettings,
    llm_configured,
    plan_with_llm,
    shot_plan_schema,
)
from kantoku.planner.planning.plan import MAX_SHOT_S, MAX_SHOTS, MIN_SHOT_S, Plan, plan_problems
from kantoku.planner.planning.repair import extract_json, repair_shots

Reply = tuple[int, dict[str, Any]]
Script = Callable[[dict[str, Any]], Reply]


# --- a scripted OpenAI-compatible server ------------------------------------------------------


@dataclass
class FakeLLM:
    """Answers POST /v1/chat/completions from a script; records every request body."""

    port: int
    script: list[Script] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def settings(self, **overrides: Any) -> LLMSettings:
        values: dict[str, Any] = {"base_url": self.base_url, "model": "test-model",
                                  "timeout_s": 5.0, "max_retries": 0, **overrides}
        return LLMSettings(**values)

    def reply(self, body: dict[str, Any]) -> Reply:
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(body)


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append(body)
            status, payload = fake.reply(body)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    server.block_on_close = False
    fake = FakeLLM(port=server.server_address[1])
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)


def completion(content: str, finish_reason: str = "stop") -> Script:
    def step(body: dict[str, Any]) -> Reply:
        return 200, {"id": "cmpl-1", "object": "chat.completion", "created": 0,
                     "model": body.get("model", "m"),
                     "choices": [{"index": 0, "finish_reason": finish_reason,
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 50,
                               "total_tokens": 150}}
    return step


def error(status: int, message: str) -> Script:
    def step(body: dict[str, Any]) -> Reply:
        return status, {"error": {"message": message, "type": "invalid_request_error",
                                  "code": None, "param": None}}
    return step


def by_format(accepted: set[str], content: str) -> Script:
    """Accepts only the response_format types in `accepted` ("none": no response_format)."""
    def step(body: dict[str, Any]) -> Reply:
        kind = body.get("response_format", {}).get("type", "none")
        if kind in accepted:
            return completion(content)(body)
        return error(400, f"response_format type {kind} is not supported")(body)
    return step


# --- fixtures: a brief and answers ------------------------------------------------------------


@pytest.fixture
def brief() -> Brief:
    return Brief.model_validate({
        "title": "Night Market", "logline": "Two friends search a night market for a lost cat.",
        "style": "cinematic, 35mm", "mood": "warm", "locations": ["night market"],
        "characters": [{"name": "Aiko", "description": "red coat"},
                       {"name": "Ben", "voice": "en_US-lessac-medium"}],
        "dialogue": [{"speaker": "Aiko", "text": "Have you seen her?"},
                     {"speaker": "Ben", "text": "Over there!"}]})


NAMES = {"Aiko", "Ben"}


def shot(start: float, end: float, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"start_s": start, "end_s": end, "section": "main",
                            "description": f"shot {start:g}", "shot_size": "medium",
                            "camera_angle": "eye_level", "camera_move": "static",
                            "characters": ["Aiko"], "location": "night market",
                            "time_of_day": "night", "dialogue": [], "transition": "cut",
                            "image_prompt": f"cinematic night market {start:g}"}
    return {**base, **fields}


def good_answer() -> str:
    return json.dumps({"shots": [
        shot(0, 3, shot_size="extreme_wide", characters=[]),
        shot(3, 6, dialogue=[{"speaker": "Aiko", "text": "Have you seen her?"}]),
        shot(6, 9, characters=["Ben"], dialogue=[{"speaker": "Ben", "text": "Over there!"}]),
        shot(9, 12, shot_size="close_up")]})


def assert_valid(plan: Plan) -> None:
    assert plan_problems(plan, NAMES) == []


# --- settings ---------------------------------------------------------------------------------


def test_llm_configured_needs_an_endpoint_and_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "KANTOKU_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert not llm_configured()
    monkeypatch.setenv("KANTOKU_LLM_MODEL", "qwen")
    assert not llm_configured()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    assert llm_configured()
    monkeypatch.setenv("KANTOKU_LLM_TIMEOUT_S", "7.5")
    assert LLMSettings().timeout_s == 7.5
    assert llm_configured(LLMSettings(api_key="sk-x", model="gpt"))
    assert not llm_configured(LLMSettings(api_key="sk-x", model=None))


# --- the planner against the server -----------------------------------------------------------


async def test_good_json_schema_answer_makes_an_llm_plan(llm: FakeLLM, brief: Brief) -> None:
    llm.script = [completion(good_answer())]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.fallback_reason is None
    assert result.plan.planner == "llm"
    assert_valid(result.plan)
    assert [s.id for s in result.plan.shots] == ["s001", "s002", "s003", "s004"]
    assert result.plan.shots[2].dialogue[0].voice == "en_US-lessac-medium"
    assert result.repairs == []
    [call] = result.calls
    assert call["ok"] and call["response_format"] == "json_schema" and call["attempt"] == 1
    assert call["model"] == "test-model" and call["base_url_host"] == f"127.0.0.1:{llm.port}"
    assert call["usage"] == {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    assert len(call["prompt_sha256"]) == 64 and len(call["response_sha256"]) == 64
    assert call["error"] is None and call["latency_ms"] >= 0
    sent = llm.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "shot_plan"
    assert sent["json_schema"]["strict"] is False


async def test_passed_client_context_and_sections_reach_the_prompt(llm: FakeLLM,
                                                                   brief: Brief) -> None:
    llm.script = [completion(good_answer())]
    client = AsyncOpenAI(base_url=llm.base_url, api_key="k", max_retries=0, timeout=5)
    sections = [Section("verse", 0.0), Section("chorus", 6.0)]
    context = {"beats": [0.5, 1.0], "lyrics": [{"start_s": 3.0, "text": "夜の市場"}]}
    result = await plan_with_llm(brief, 12.0, client=client, settings=llm.settings(),
                                 context=context, sections=sections)
    await client.close()
    assert result.plan.planner == "llm"
    user = json.loads(llm.requests[0]["messages"][1]["content"])
    assert user["context"] == context
    assert user["sections"] == [{"label": "verse", "start_s": 0.0},
                                {"label": "chorus", "start_s": 6.0}]
    assert "reference" not in json.dumps(user["brief"])


async def test_json_schema_rejected_falls_back_to_json_object(llm: FakeLLM,
                                                              brief: Brief) -> None:
    llm.script = [by_format({"json_object"}, good_answer())]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.plan.planner == "llm"
    assert_valid(result.plan)
    assert [c["response_format"] for c in result.calls] == ["json_schema", "json_object"]
    assert [c["ok"] for c in result.calls] == [False, True]
    assert "HTTP 400" in result.calls[0]["error"]
    sent = llm.requests[1]["response_format"]
    assert sent == {"type": "json_object", "schema": shot_plan_schema(brief)}


async def test_no_response_format_reads_json_from_fenced_prose(llm: FakeLLM,
                                                               brief: Brief) -> None:
    prose = f"Sure! Here is the plan:\n```json\n{good_answer()}\n```\nEnjoy {{the film}}."
    llm.script = [by_format({"none"}, prose)]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.plan.planner == "llm"
    assert_valid(result.plan)
    assert [c["response_format"] for c in result.calls] == ["json_schema", "json_object", "none"]
    assert "response_format" not in llm.requests[-1]


async def test_messy_answer_is_repaired_with_notes(llm: FakeLLM, brief: Brief) -> None:
    messy = {"shots": [
        shot(5.5, 9.0, shot_size="super_tight"),
        shot(-1.0, 3.2, characters=["Aiko", "Zed"]),
        shot(3.0, 6.0, camera_move="whip"),
        shot(9.0, 14.0),
    ]}
    llm.script = [completion(json.dumps(messy))]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    plan = result.plan
    assert plan.planner == "llm" and result.fallback_reason is None
    assert_valid(plan)
    assert [(s.start_s, s.end_s) for s in plan.shots] == [(0, 3.0), (3.0, 5.5), (5.5, 9.0),
                                                         (9.0, 12.0)]
    assert plan.shots[0].characters == ["Aiko"]
    assert plan.shots[2].shot_size == "medium"
    assert plan.notes == result.repairs
    joined = "\n".join(result.repairs)
    for words in ("super_tight", "'Zed'", "whip", "sorted", "clamped", "overlap"):
        assert words in joined


async def test_garbage_then_good_answer_uses_the_second(llm: FakeLLM, brief: Brief) -> None:
    llm.script = [completion("I am not sure what a shot plan is."), completion(good_answer())]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.plan.planner == "llm"
    assert_valid(result.plan)
    assert [(c["attempt"], c["ok"]) for c in result.calls] == [(1, False), (2, True)]
    reask = llm.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "I am not sure what a shot plan is."}
    assert "no JSON object" in reask[-1]["content"]
    assert result.calls[0]["prompt_sha256"] != result.calls[1]["prompt_sha256"]


async def test_a_cut_off_answer_is_reasked_saying_so(llm: FakeLLM, brief: Brief) -> None:
    llm.script = [completion(good_answer()[:80], "length"), completion(good_answer())]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.plan.planner == "llm"
    assert result.calls[0]["finish_reason"] == "length"
    assert "cut off" in llm.requests[1]["messages"][-1]["content"]


async def test_garbage_twice_falls_back_to_the_heuristic(llm: FakeLLM, brief: Brief) -> None:
    llm.script = [completion('{"shots": "lots"}')]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.fallback_reason is not None and "unusable twice" in result.fallback_reason
    assert result.plan.planner.startswith("heuristic (fallback: ")
    assert_valid(result.plan)
    assert len(result.calls) == 2 and not any(c["ok"] for c in result.calls)
    assert any("LLM planner not used" in note for note in result.plan.notes)


async def test_a_slow_server_times_out_into_the_fallback(llm: FakeLLM, brief: Brief) -> None:
    def slow(body: dict[str, Any]) -> Reply:
        llm.release.wait(3.0)
        return completion(good_answer())(body)

    llm.script = [slow]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings(timeout_s=0.3))
    assert result.fallback_reason is not None and "timed out" in result.fallback_reason
    assert result.plan.planner.startswith("heuristic (fallback: the LLM timed out")
    assert_valid(result.plan)
    [call] = result.calls
    assert not call["ok"] and "timed out" in call["error"] and call["latency_ms"] < 2000


async def test_an_http_error_falls_back_without_retrying_formats(llm: FakeLLM,
                                                                 brief: Brief) -> None:
    llm.script = [error(401, "bad key")]
    result = await plan_with_llm(brief, 12.0, settings=llm.settings())
    assert result.fallback_reason is not None and "HTTP 401" in result.fallback_reason
    assert len(result.calls) == 1
    assert_valid(result.plan)


async def test_connection_refused_falls_back(brief: Brief) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0,
                           timeout_s=2.0)
    result = await plan_with_llm(brief, 12.0, settings=settings)
    assert result.fallback_reason is not None and "connect" in result.fallback_reason
    assert result.plan.planner.startswith("heuristic (fallback: ")
    assert_valid(result.plan)


async def test_no_model_configured_falls_back_without_calls(brief: Brief) -> None:
    result = await plan_with_llm(brief, 12.0, settings=LLMSettings(base_url="http://x/v1"))
    assert result.calls == [] and "KANTOKU_LLM_MODEL" in (result.fallback_reason or "")
    assert_valid(result.plan)


# --- repair_shots, without an LLM -------------------------------------------------------------


def repair(raw: object, brief: Brief, duration: float = 12.0, fps: int = 30,
           snap: Callable[[list[float]], list[float]] | None = None,
           ) -> tuple[Plan, list[str]]:
    plan, repairs, problems = repair_shots(raw, brief, duration, fps, snap)
    assert plan is not None and problems == []
    assert_valid(plan)
    return plan, repairs


@pytest.mark.parametrize("raw", [None, 3, "shots", [], {"shots": []}, {"shots": {"a": 1}},
                                 {"shots": [1, "x", None]},
                                 {"shots": [{"start_s": "soon", "end_s": 2}]},
                                 {"shots": [{"start_s": 5, "end_s": 2}]},
                                 {"shots": [{"start_s": 50, "end_s": 60}]}])
def test_unusable_answers_give_no_plan(raw: object, brief: Brief) -> None:
    plan, _, problems = repair_shots(raw, brief, 12.0, 30, None)
    assert plan is None and problems


def test_dropped_items_are_noted(brief: Brief) -> None:
    raw = {"shots": [7, shot(0, 6), {"start_s": None, "end_s": 3}, shot(6, 12)]}
    plan, repairs = repair(raw, brief)
    assert len(plan.shots) == 2
    assert any("shots[0]: not an object" in r for r in repairs)
    assert any("shots[2]: unusable times" in r for r in repairs)


def test_gaps_extend_the_previous_shot_and_ends_are_forced(brief: Brief) -> None:
    plan, repairs = repair({"shots": [shot(0.4, 4), shot(6, 10)]}, brief)
    assert [(s.start_s, s.end_s) for s in plan.shots] == [(0.0, 6.0), (6.0, 12.0)]
    assert any("gap" in r for r in repairs)
    assert any("first shot" in r for r in repairs) and any("last shot" in r for r in repairs)


def test_short_shots_merge_and_keep_their_dialogue(brief: Brief) -> None:
    line = [{"speaker": "ben", "text": "Over there!"}]
    raw = {"shots": [shot(0, 0.2), shot(0.2, 6), shot(6, 6.3, dialogue=line), shot(6.3, 12)]}
    plan, repairs = repair(raw, brief)
    assert [(s.start_s, s.end_s) for s in plan.shots] == [(0.0, 6.3), (6.3, 12.0)]
    assert plan.shots[0].description == "shot 0.2"
    assert [d.speaker for d in plan.shots[0].dialogue] == ["Ben"]
    assert sum("under 0.5 s" in r for r in repairs) == 2
    assert all(s.duration_s >= MIN_SHOT_S for s in plan.shots)


def test_long_shots_are_split(brief: Brief) -> None:
    plan, repairs = repair({"shots": [shot(0, 50)]}, brief, duration=50.0)
    assert len(plan.shots) == 3 and all(s.duration_s <= MAX_SHOT_S for s in plan.shots)
    assert any("split into 3" in r for r in repairs)
    assert len({s.seed for s in plan.shots}) == 3


def test_times_snap_to_the_given_times_then_the_frame_grid(brief: Brief) -> None:
    beats = [0.0, 2.9, 6.1, 9.2, 12.0]

    def to_beats(times: list[float]) -> list[float]:
        return [min(beats, key=lambda b: abs(b - t)) for t in times]

    raw = {"shots": [shot(0, 3.013), shot(3.013, 5.9), shot(5.9, 9.0), shot(9.0, 12)]}
    plan, _ = repair(raw, brief, fps=24, snap=to_beats)
    assert [round(s.start_s * 24) for s in plan.shots] == [0, 70, 146, 221]
    assert plan.shots[1].start_s == 70 / 24


def test_a_faulty_snapper_is_ignored_with_a_note(brief: Brief) -> None:
    plan, repairs = repair({"shots": [shot(0, 6), shot(6, 12)]}, brief,
                           snap=lambda times: [])
    assert plan.shots[1].start_s == 6.0
    assert any("snapping" in r for r in repairs)


def test_enum_aliases_and_unknown_values(brief: Brief) -> None:
    raw = {"shots": [shot(0, 6, shot_size="Close-Up", camera_angle="worm", time_of_day=3,
                          transition="wipe", characters="AIKO"),
                     shot(6, 12, shot_size="ECU", image_prompt="", dialogue="hi")]}
    plan, repairs = repair(raw, brief)
    first, second = plan.shots
    assert (first.shot_size, first.camera_angle, first.time_of_day, first.transition) == \
        ("close_up", "eye_level", "night", "cut")
    assert first.characters == ["Aiko"]
    assert second.shot_size == "extreme_close_up" and second.image_prompt
    for words in ("'worm'", "'wipe'", "time_of_day", "image_prompt", "dialogue: not a list"):
        assert any(words in r for r in repairs), words


def test_too_many_shots_are_truncated(brief: Brief) -> None:
    raw = {"shots": [shot(i * 0.5, i * 0.5 + 0.5) for i in range(MAX_SHOTS + 30)]}
    plan, repairs = repair(raw, brief, duration=90.0)
    assert len(plan.shots) <= MAX_SHOTS
    assert any("over the limit" in r for r in repairs)


def test_bare_list_and_deterministic_ids_and_seeds(brief: Brief) -> None:
    raw = [shot(6, 12), shot(0, 6)]
    plan, repairs = repair(raw, brief)
    again, _ = repair(raw, brief)
    assert [s.id for s in plan.shots] == ["s001", "s002"]
    assert plan.shots[0].description == "shot 0"
    assert [s.seed for s in plan.shots] == [s.seed for s in again.shots]
    assert any("bare list" in r for r in repairs) and any("sorted" in r for r in repairs)


def test_a_plan_covering_little_of_the_video_is_a_problem(brief: Brief) -> None:
    plan, _, problems = repair_shots({"shots": [shot(0, 2)]}, brief, 30.0, 30, None)
    assert plan is not None and plan_problems(plan, NAMES) == []
    assert problems and "cover only" in problems[0]


def test_extract_json_variants() -> None:
    assert extract_json('{"shots": []}') == {"shots": []}
    assert extract_json('<think>{"no": 1}</think> ok {"shots": [1]}') == {"shots": [1]}
    assert extract_json('Plan: {"a": 1} then {"shots": [2]} done') == {"shots": [2]}
    assert extract_json("```\n[1, 2]\n```") == [1, 2]
    assert extract_json("no json {here") is None
