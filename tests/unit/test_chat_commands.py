"""The chat's commands (run without a tool-calling model): a command is the whole message."""

from __future__ import annotations

import pytest

from kantoku.agents.studio.chat_commands import match_command
from kantoku.agents.studio.chat_tools import title_from


@pytest.mark.parametrize(("text", "tool"), [
    ("start the job", "start_job"), ("Please start the job now.", "start_job"),
    ("ジョブを開始して", "start_job"), ("開始してください", "start_job"),
    ("show me the plan", "get_plan"), ("プランを見せて", "get_plan"),
    ("status?", "job_status"), ("進捗は？", "job_status"),
    ("explain the rights", "explain_rights"), ("approve", "propose"), ("承認して", "propose"),
])
def test_whole_messages_are_commands(text: str, tool: str) -> None:
    assert match_command(text) is not None and match_command(text)[0] == tool  # type: ignore[index]


@pytest.mark.parametrize("text", [
    "don't start the job yet", "Can you start the job after lunch?", "A plan to rob a bank",
    "Note: the cat is orange", "approve of nothing",
])
def test_phrases_inside_longer_messages_are_not(text: str) -> None:
    assert match_command(text) is None


def test_field_lines_set_the_brief_or_a_shot() -> None:
    assert match_command("Style: watercolour\nlength: 10 s\nlocations: pier, 灯台") == (
        "update_brief", {"style": "watercolour", "duration_s": 10.0,
                         "locations": ["pier", "灯台"]})
    assert match_command("長さ: 8秒") == ("update_brief", {"duration_s": 8.0})
    assert match_command("S002 camera_move: dolly_in\ns002 end_s: 4.5") == (
        "edit_shot", {"shot_id": "s002", "changes": {"camera_move": "dolly_in", "end_s": 4.5}})
    assert match_command("s001 style: x\ns002 style: y") is None  # one shot at a time


def test_titles_come_from_the_first_words() -> None:
    assert title_from("a lighthouse keeper feeds the gulls at dawn and sings. Then more.") == \
        "A lighthouse keeper feeds the gulls at dawn"
    assert title_from("夕暮れの夜市を歩くメイの動画を作って、ジョブを開始して") == \
        "夕暮れの夜市を歩くメイの動画を作って"
