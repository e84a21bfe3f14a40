"""The LLM planner against a real local HTTP server speaking OpenAI chat completions (streamed),
playing the answers small models give: too few shots, nobody in frame, dialogue dropped, a
prompt of "{", a 500 for json_schema, an answer that never ends, a model the server lacks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kantoku.planner.planning import endpoint
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.gate import score_plan
from kantoku.planner.planning.heuristic import describe_shot, heuristic_plan
from kantoku.planner.planning.llm import LLMPlanResult, LLMSettings, llm_configured, plan_with_llm
from kantoku.planner.planning.plan import Plan, plan_problems
from tests.scripted_llm import Endless, Error, ScriptedLLM, Text, answering, asked, scripted_llm

NAMES = {"Aki", "Ren"}


@pytest.fixture(autouse=True)
def _fresh_negotiation() -> Iterator[None]:
    endpoint._NEGOTIATED.clear()
    endpoint._NO_STREAM_OPTIONS.clear()
    yield
    endpoint._NEGOTIATED.clear()
    endpoint._NO_STREAM_OPTIONS.clear()


@pytest.fixture
def brief() -> Brief:
    return Brief.model_validate({
        "title": "City night", "logline": "Two friends race across rooftops to catch the last "
        "train home.", "duration_s": 12, "style": "anime storyboard, clean lines",
        "mood": "hopeful", "locations": ["rooftop", "train station"],
        "characters": [{"name": "Aki", "description": "red jacket, short black hair"},
                       {"name": "Ren", "description": "blue hoodie, tall"}],
        "dialogue": [{"speaker": "Ren", "text": "Come on, the last train leaves at midnight!"},
                     {"speaker": "Aki", "text": "I can see the station from here."}]})


@pytest.fixture
def grid(brief: Brief) -> Plan:
    return heuristic_plan(brief, 12.0)


def settings(llm: ScriptedLLM, **overrides: Any) -> LLMSettings:
    values: dict[str, Any] = {"base_url": llm.base_url, "api_key": "test", "model": "scripted-1",
                              "timeout_s": 5.0, "max_retries": 0, **overrides}
    return LLMSettings(**values)


GOOD = [
    {"who": [], "size": "extreme_wide", "move": "pan_right", "place": "rooftop", "lines": [],
     "show": "The rooftops of the city under a starry night sky", "cut": True},
    {"who": ["Ren"], "size": "medium", "move": "truck_left", "place": "rooftop", "lines": [1],
     "show": "Ren jumps a gap between rooftops and shouts back", "cut": True},
    {"who": ["Aki"], "size": "close_up", "move": "dolly_in", "place": "rooftop", "lines": [2],
     "show": "Aki points at the glowing train station far below", "cut": True},
    {"who": ["Aki", "Ren"], "size": "wide", "move": "static", "place": "train station",
     "lines": [], "show": "Aki and Ren run onto the platform as the train arrives", "cut": True}]


def good(shot_id: str, position: int) -> dict[str, Any]:
    return GOOD[int(shot_id[1:]) - 1]


async def plan(brief: Brief, grid: Plan, llm: ScriptedLLM, **overrides: Any) -> LLMPlanResult:
    result = await plan_with_llm(brief, grid, longest_s=8.0, settings=settings(llm, **overrides))
    assert plan_problems(result.plan, NAMES) == []
    assert score_plan(result.plan, brief).total >= score_plan(grid, brief).total
    return result


def rounds(result: LLMPlanResult) -> list[tuple[str, bool]]:
    return [(g["round"], g["passed"]) for g in result.gates]


def check(result: LLMPlanResult, round_name: str, name: str) -> dict[str, Any]:
    gate = next(g for g in result.gates if g["round"] == round_name)
    return next(c for c in gate["checks"] if c["check"] == name)


# --- settings ---------------------------------------------------------------------------------


def test_an_external_endpoint_is_configured_by_a_base_url_or_a_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "KANTOKU_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert not llm_configured()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    assert llm_configured()
    for name, value, attribute, expected in (
            ("KANTOKU_LLM_TIMEOUT_S", "7.5", "timeout_s", 7.5),
            ("KANTOKU_LLM_MAX_TOKENS", "300", "max_tokens", 300),
            ("KANTOKU_LLM_TEMPERATURE", "0.1", "temperature", 0.1),
            ("KANTOKU_LLM_BATCH_SHOTS", "4", "batch_shots", 4),
            ("KANTOKU_LLM_DETAIL", "compact", "detail", "compact")):
        monkeypatch.setenv(name, value)
        assert getattr(LLMSettings(), attribute) == expected


# --- answers that pass ------------------------------------------------------------------------


async def test_a_good_answer_is_the_plan_with_every_field_marked_llm(brief: Brief,
                                                                     grid: Plan) -> None:
    with scripted_llm(answering(good)) as llm:
        result = await plan(brief, grid, llm)
    assert result.fallback_reason is None and result.plan.planner == "llm"
    shots = result.plan.shots
    assert [s.description for s in shots] == [g["show"] for g in GOOD]
    assert [s.shot_size for s in shots] == ["extreme_wide", "medium", "close_up", "wide"]
    assert [d.speaker for s in shots for d in s.dialogue] == ["Ren", "Aki"]
    assert shots[1].sources["description"] == "llm" and shots[1].sources["dialogue"] == "llm"
    assert shots[1].sources["image_prompt"] == "llm+rules"
    assert shots[1].sources["camera_angle"] == "rules"
    prompt = shots[2].image_prompt
    assert "anime storyboard" in prompt and "rooftop" in prompt and "Aki, red jacket" in prompt
    assert rounds(result) == [("answers", True)]
    [call] = result.calls
    assert call["ok"] and call["response_format"] == "json_schema"
    assert call["completion_tokens"] > 0 and call["first_token_ms"] is not None
    [request] = llm.chats()
    assert request["stream"] is True and request["max_tokens"] == call["max_tokens"] <= 400
    items = request["response_format"]["json_schema"]["schema"]["properties"]["shots"]
    assert items["minItems"] == items["maxItems"] == 4
    assert result.report.summary().startswith("plan: LLM planner scripted-1 at 127.0.0.1:")


async def test_the_llm_may_hold_a_cut_but_not_across_a_section(brief: Brief) -> None:
    grid = heuristic_plan(brief, 30.0)  # opening / middle / ending sections
    sections = [s.section for s in grid.shots]

    def hold_all(shot_id: str, position: int) -> dict[str, Any]:
        return {**GOOD[1], "lines": [], "cut": False}

    with scripted_llm(answering(hold_all)) as llm:
        result = await plan(brief, grid, llm)
    assert {s.section for s in result.plan.shots} == set(sections)
    assert len(result.plan.shots) < len(grid.shots)
    assert all(s.duration_s <= 8.0 + 1e-6 for s in result.plan.shots)
    assert any(s.sources.get("end_s") == "llm" for s in result.plan.shots)


# --- bad answers: re-asked, then repaired shot by shot from the rules --------------------------


async def test_two_shots_for_four_are_re_asked_then_filled_by_the_rules(brief: Brief,
                                                                        grid: Plan) -> None:
    two = Text(json.dumps({"shots": GOOD[:2]}))
    with scripted_llm(two) as llm:
        result = await plan(brief, grid, llm)
    assert len(result.plan.shots) == 4 and result.plan.planner == "llm"
    assert len(llm.chats()) == 2  # the answer, and one re-ask
    assert "the answer has 2 shots; give exactly 4" in llm.chats()[1]["messages"][-1]["content"]
    assert result.report.reasks == 1
    assert result.plan.shots[3].sources["description"] == "rules"
    assert result.plan.shots[3].description == grid.shots[3].description
    assert rounds(result)[-1][1] is True


async def test_characters_missing_from_every_shot_are_put_back(brief: Brief, grid: Plan) -> None:
    def nobody(shot_id: str, position: int) -> dict[str, Any]:
        return {**GOOD[0], "lines": []}

    with scripted_llm(answering(nobody)) as llm:
        result = await plan(brief, grid, llm)
    assert not check(result, "answers", "characters")["ok"]
    assert "Aki appears in no shot" in " ".join(check(result, "answers", "characters")["problems"])
    shown = {n for s in result.plan.shots for n in s.characters}
    assert shown == NAMES
    last_round, passed = rounds(result)[-1]
    assert last_round.startswith("repaired") and passed
    assert any(s.sources["characters"] == "llm+rules" for s in result.plan.shots)


async def test_dropped_dialogue_is_placed_on_its_speakers_shot(brief: Brief, grid: Plan) -> None:
    def silent(shot_id: str, position: int) -> dict[str, Any]:
        return {**good(shot_id, position), "lines": []}

    with scripted_llm(answering(silent)) as llm:
        result = await plan(brief, grid, llm)
    assert not check(result, "answers", "dialogue")["ok"]
    lines = [(d.speaker, d.text) for s in result.plan.shots for d in s.dialogue]
    assert lines == [(line.speaker, line.text) for line in brief.dialogue]
    for shot in result.plan.shots:
        for line in shot.dialogue:
            assert line.speaker in shot.characters
    assert any("dialogue line 1: placed by the rules" in r for r in result.repairs)


async def test_a_prompt_of_a_brace_is_replaced_by_the_rules_description(brief: Brief,
                                                                        grid: Plan) -> None:
    def brace(shot_id: str, position: int) -> dict[str, Any]:
        return {**good(shot_id, position), "show": "{"} if shot_id == "s002" else \
            good(shot_id, position)

    with scripted_llm(answering(brace)) as llm:
        result = await plan(brief, grid, llm)
    problems = check(result, "answers", "descriptions")["problems"]
    assert any("s002" in p and "'{'" in p for p in problems)
    shot = result.plan.shots[1]
    assert shot.sources["description"] == "rules"
    assert shot.description == describe_shot(shot.shot_size, shot.characters, shot.location)
    assert "{" not in shot.image_prompt
    assert result.plan.shots[0].sources["description"] == "llm"


@pytest.mark.parametrize("show", ["big eyes", "Imgur", "jungle_land27315289.jpg",
                                  "what we see here now"])
async def test_descriptions_that_say_nothing_of_the_brief_fail_the_gate(
        brief: Brief, grid: Plan, show: str) -> None:
    def vague(shot_id: str, position: int) -> dict[str, Any]:
        return {**good(shot_id, position), "who": [], "show": show}

    with scripted_llm(answering(vague)) as llm:
        result = await plan(brief, grid, llm)
    assert not check(result, "answers", "descriptions")["ok"]
    assert all(s.description != show for s in result.plan.shots)


async def test_an_english_answer_to_a_japanese_brief_fails_the_language_check() -> None:
    brief = Brief.model_validate({
        "title": "夜の街", "logline": "二人の友達が屋上を走って終電に向かう。", "language": "ja",
        "duration_s": 9, "locations": ["屋上"],
        "characters": [{"name": "アキ", "description": "赤いジャケット"}]})
    grid = heuristic_plan(brief, 9.0)

    def english(shot_id: str, position: int) -> dict[str, Any]:
        return {"who": ["アキ"], "show": "アキ runs across the rooftop at night"}

    with scripted_llm(answering(english)) as llm:
        result = await plan_with_llm(brief, grid, longest_s=8.0, settings=settings(llm))
    assert not check(result, "answers", "language")["ok"]
    assert "in Japanese" in llm.chats()[0]["messages"][0]["content"]
    assert all(s.sources["description"] == "rules" and "runs" not in s.description
               for s in result.plan.shots)


async def test_garbage_twice_falls_back_to_the_heuristic_plan(brief: Brief, grid: Plan) -> None:
    with scripted_llm(Text("shots? lol {not json")) as llm:
        result = await plan(brief, grid, llm)
    assert result.plan.planner.startswith("heuristic (fallback")
    assert result.plan.shots == grid.shots
    assert len(llm.chats()) == 2
    assert "LLM scripted-1" in result.report.summary() and "was not used" in result.report.summary()


# --- the endpoint: formats, limits, models ------------------------------------------------------


async def test_a_500_refusing_json_schema_moves_on_at_once_and_is_remembered(
        brief: Brief, grid: Plan) -> None:
    def schema_refused(body: dict[str, Any]) -> Text | Error:
        if body.get("response_format", {}).get("type") == "json_schema":
            return Error(500, "1 validation error: response_format.type: Input should be "
                              "'text' or 'json_object'")
        return answering(good)(body)

    with scripted_llm(schema_refused) as llm:
        first = await plan(brief, grid, llm)
        again = await plan(brief, grid, llm)
    kinds = [r["response_format"]["type"] for r in llm.chats()]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert first.plan.planner == again.plan.planner == "llm"
    assert [c["response_format"] for c in first.calls] == ["json_schema", "json_object"]


async def test_an_answer_that_never_ends_is_cut_off_and_the_connection_closed(
        brief: Brief, grid: Plan) -> None:
    with scripted_llm(Endless()) as llm:
        started = time.perf_counter()
        result = await plan(brief, grid, llm, timeout_s=20.0)
        elapsed = time.perf_counter() - started
        assert llm.hung_up.wait(5)
    assert elapsed < 10
    assert len(llm.chats()) == 1  # neither retried nor re-asked
    [call] = result.calls
    assert "kept writing past max_tokens" in call["error"]
    assert result.plan.planner.startswith("heuristic (fallback")


async def test_a_slow_answer_stops_at_its_timeout_and_is_not_retried(brief: Brief,
                                                                     grid: Plan) -> None:
    with scripted_llm(Endless(every_s=0.3)) as llm:
        started = time.perf_counter()
        result = await plan(brief, grid, llm, timeout_s=1.0, max_retries=3)
        elapsed = time.perf_counter() - started
        assert llm.hung_up.wait(5)
    assert elapsed < 3
    assert len(llm.chats()) == 1
    [call] = result.calls
    assert call["latency_ms"] <= 1300 and "within its timeout (1 s)" in call["error"]
    assert "timeout" in (result.fallback_reason or "")


async def test_a_model_the_server_does_not_have_is_named(brief: Brief, grid: Plan) -> None:
    with scripted_llm(answering(good), models=["qwen2.5-7b", "llama-3.1-8b"]) as llm:
        result = await plan(brief, grid, llm, model="gpt-4o")
    assert llm.chats() == []
    reason = result.fallback_reason or ""
    assert "no model 'gpt-4o'" in reason and "qwen2.5-7b" in reason
    assert "KANTOKU_LLM_MODEL" in reason


async def test_without_a_model_the_servers_only_model_is_used(brief: Brief, grid: Plan) -> None:
    with scripted_llm(answering(good), models=["only-one"]) as llm:
        result = await plan(brief, grid, llm, model=None)
    assert result.report.model == "only-one" and llm.chats()[0]["model"] == "only-one"


def sections_asked(body: dict[str, Any]) -> list[str]:
    return re.findall(r"^section (\w+):", body["messages"][-1]["content"], flags=re.MULTILINE)


async def test_compact_detail_asks_per_section_and_the_rules_frame_each_shot(
        brief: Brief, grid: Plan) -> None:
    scenes = {"opening": (["Ren"], "rooftop", "Ren waits on the rooftop under the night sky"),
              "middle": (["Aki", "Ren"], "rooftop", "Aki and Ren race across the rooftops"),
              "ending": (["Aki", "Ren"], "train station", "Aki and Ren reach the train station")}

    def per_section(body: dict[str, Any]) -> Text:
        answers = [dict(zip(("who", "place", "show"), scenes[label], strict=True))
                   for label in sections_asked(body)]
        return Text(json.dumps({"sections": answers}))

    with scripted_llm(per_section) as llm:
        result = await plan(brief, grid, llm, detail="compact")
    [request] = llm.chats()
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["sections"]["items"]["required"] == ["who", "place", "show"]
    assert sections_asked(request) == ["opening", "middle", "ending"]
    assert request["max_tokens"] < 300
    shots = result.plan.shots
    assert [s.shot_size for s in shots] == [s.shot_size for s in grid.shots]
    assert [s.description for s in shots] == [scenes[s.section][2] for s in grid.shots]
    assert shots[-1].location == "train station"
    assert all(set(s.characters) <= set(scenes[s.section][0]) | {"Aki", "Ren"} for s in shots)
    assert shots[1].sources["shot_size"] == "rules" and shots[1].sources["description"] == "llm"
    lines = [(d.speaker, d.text) for s in shots for d in s.dialogue]
    assert lines == [(line.speaker, line.text) for line in brief.dialogue]
    assert rounds(result)[-1][1]


async def test_batches_are_asked_in_turn_with_the_lines_already_placed(brief: Brief) -> None:
    grid = heuristic_plan(brief, 30.0)
    with scripted_llm(answering(lambda s, i: {**GOOD[1], "lines": [], "who": ["Ren"]})) as llm:
        result = await plan(brief, grid, llm, batch_shots=4)
    assert len(result.calls) >= 2
    asked_ids = [asked(r) for r in llm.chats()[:2]]
    assert asked_ids[0][0] == "s001" and asked_ids[1][0] == f"s{len(asked_ids[0]) + 1:03d}"


async def test_the_same_description_on_every_shot_is_kept_once(brief: Brief, grid: Plan) -> None:
    def same(shot_id: str, position: int) -> dict[str, Any]:
        return {**good(shot_id, position), "who": ["Ren"], "lines": [],
                "show": "Ren runs across the rooftop"}

    with scripted_llm(answering(same)) as llm:
        result = await plan(brief, grid, llm)
    problems = check(result, "answers", "descriptions")["problems"]
    assert any("repeats the description of s001" in p for p in problems)
    descriptions = [s.description for s in result.plan.shots]
    assert descriptions.count("Ren runs across the rooftop") == 1


async def test_one_character_and_one_place_for_the_whole_video_are_rebalanced(
        brief: Brief) -> None:
    grid = heuristic_plan(brief, 30.0)

    def per_section(body: dict[str, Any]) -> Text:
        answers = [{"who": ["Ren"], "place": "rooftop", "show": f"Ren runs over the rooftop {i}"}
                   for i, _ in enumerate(sections_asked(body))]
        return Text(json.dumps({"sections": answers}))

    with scripted_llm(per_section) as llm:
        result = await plan(brief, grid, llm, detail="compact")
    first = {c["check"]: c for c in result.gates[0]["checks"]}
    assert not first["characters"]["ok"]
    assert "give Aki at least 25%" in first["characters"]["problems"][0]
    assert not first["places"]["ok"] and "train station" in first["places"]["problems"][0]
    shots = result.plan.shots
    assert {s.location for s in shots} == {"rooftop", "train station"}
    peopled = [s for s in shots if s.characters]
    aki = sum(s.duration_s for s in peopled if "Aki" in s.characters)
    assert aki / sum(s.duration_s for s in peopled) >= 0.25
    assert rounds(result)[-1][1]


def test_briefs_written_in_japanese_get_japanese_rule_descriptions() -> None:
    brief = Brief.model_validate({"title": "夜の街", "logline": "屋上を走る", "language": "ja",
                                  "duration_s": 6, "locations": ["屋上"],
                                  "characters": [{"name": "アキ"}]})
    descriptions = [s.description for s in heuristic_plan(brief, 6.0).shots]
    assert descriptions[0] == "屋上、超ロングショット"
    assert all("of" not in d for d in descriptions)
