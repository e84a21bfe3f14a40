"""Briefs are validated at the door; the heuristic planner always gives a renderable plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from kantoku.planner.planning.brief import MAX_DURATION_S, load_brief, parse_brief
from kantoku.planner.planning.heuristic import heuristic_plan
from kantoku.planner.planning.plan import MAX_SHOTS, MIN_SHOT_S, plan_problems
from kantoku.services._core.errors import Category, KantokuError

GOOD = {"title": "Neon rain", "logline": "two friends race through a rainy night city",
        "duration_s": 20, "locations": ["rooftop", "alley"],
        "characters": [{"name": "Aki", "description": "red jacket"},
                       {"name": "Ren", "description": "blue hoodie", "voice": "jf_alpha"}],
        "dialogue": [{"speaker": "Ren", "text": "Hurry up!"},
                     {"speaker": "Aki", "text": "Wait for me."}]}


def error_of(data: object) -> KantokuError:
    with pytest.raises(KantokuError) as caught:
        parse_brief(data)
    assert caught.value.category is Category.INVALID_REQUEST
    return caught.value


def test_brief_defaults_to_vertical_720p() -> None:
    brief = parse_brief(GOOD)
    assert brief.size == (720, 1280)
    assert parse_brief({**GOOD, "aspect": "16:9", "resolution": "1080p"}).size == (1920, 1080)
    assert parse_brief({**GOOD, "aspect": "1:1"}).size == (720, 720)


@pytest.mark.parametrize(("change", "field"), [
    ({"duration_s": 0}, "duration_s"),
    ({"duration_s": -3}, "duration_s"),
    ({"duration_s": MAX_DURATION_S + 1}, "duration_s"),
    ({"aspect": "4:3"}, "aspect"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"characters": [{"name": "Aki", "costume": "x"}]}, "characters.0.costume"),
    ({"dialogue": [{"speaker": "Yuki", "text": "hi"}]}, "'Yuki' is not one of the characters"),
    ({"rights_policy": {"use": "sometimes"}}, "rights_policy.use"),
    ({"title": ""}, "title"),
])
def test_bad_briefs_name_the_field(change: dict, field: str) -> None:
    assert field in error_of({**GOOD, **change}).message


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text("title: x\ncharacters: [\n  {name: Aki\n")
    with pytest.raises(KantokuError) as caught:
        load_brief(path)
    assert f"{path}:" in caught.value.message and "not valid YAML" in caught.value.message
    assert caught.value.reason == "BRIEF_SYNTAX"


def test_missing_brief_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(KantokuError) as caught:
        load_brief(tmp_path / "nope.yaml")
    assert caught.value.category is Category.NOT_FOUND and "nope.yaml" in caught.value.message


def test_heuristic_plan_covers_the_running_time_on_the_frame_grid() -> None:
    brief = parse_brief(GOOD)
    plan = heuristic_plan(brief, 20.0)
    assert plan_problems(plan, {"Aki", "Ren"}) == []
    assert plan.shots[0].start_s == 0 and plan.shots[-1].end_s == 20.0
    assert plan.shots[0].shot_size == "extreme_wide"  # establishing shot first
    assert sum(plan.frames(s) for s in plan.shots) == 20 * brief.fps
    lines = [(d.speaker, d.text, d.voice) for s in plan.shots for d in s.dialogue]
    assert lines == [("Ren", "Hurry up!", "jf_alpha"), ("Aki", "Wait for me.", "en_US-joe-medium")]
    assert {"Aki", "Ren"} <= {c for s in plan.shots for c in s.characters}
    assert heuristic_plan(brief, 20.0) == plan  # deterministic


def test_heuristic_plan_respects_shot_limits_for_long_and_dense_cuts() -> None:
    brief = parse_brief({**GOOD, "duration_s": MAX_DURATION_S})
    dense = heuristic_plan(brief, MAX_DURATION_S, cut_times=[i * 0.1 for i in range(6000)])
    assert len(dense.shots) <= MAX_SHOTS
    assert min(s.duration_s for s in dense.shots) >= MIN_SHOT_S
    assert plan_problems(dense, {"Aki", "Ren"}) == []


def test_plan_problems_name_the_shot() -> None:
    plan = heuristic_plan(parse_brief(GOOD), 20.0)
    broken = plan.model_copy(deep=True)
    broken.shots[1].start_s += 0.5
    broken.shots[2].characters = ["Nobody"]
    problems = " ".join(plan_problems(broken, {"Aki", "Ren"}))
    assert "s002" in problems and "contiguous" in problems and "'Nobody'" in problems


@pytest.mark.parametrize(("family", "frames", "asked"), [
    ("WanPipeline", 90, 93), ("WanPipeline", 89, 89), ("LTXPipeline", 90, 97),
    ("CogVideoXPipeline", 49, 49), ("previz", 90, 90)])
def test_clips_are_rendered_at_a_length_the_video_model_can_make(family: str, frames: int,
                                                                 asked: int) -> None:
    from kantoku.services._core.generation import allowed_frame_count

    assert allowed_frame_count(family, frames) == asked
