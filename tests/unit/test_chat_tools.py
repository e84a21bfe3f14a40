"""The chat's tool calls are checked before they run; every refusal is an answer for the model."""

from __future__ import annotations

import json
from pathlib import Path

from kantoku.agents.studio.chat_tools import TOOLS, Workspace, call_tool, new_draft, tool_specs
from kantoku.agents.studio.jobs import JobManager


def workspace(tmp_path: Path) -> Workspace:
    return Workspace(JobManager(tmp_path, None), new_draft("en"), language="en")


async def answer(space: Workspace, name: str, arguments: str) -> dict:
    outcome = await call_tool(space, name, arguments)
    body = json.loads(outcome.content)
    assert outcome.ok == ("error" not in body)
    return body


async def test_refusals_name_what_to_fix_and_change_nothing(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    assert "no tool named 'fly'" in (await answer(space, "fly", "{}"))["error"]
    assert "not JSON" in (await answer(space, "update_brief", "{title: x}"))["error"]
    assert "a JSON object" in (await answer(space, "get_brief", "[1]"))["error"]
    assert "colour: not a brief field" in \
        (await answer(space, "update_brief", '{"colour": "red"}'))["error"]
    too_long = await answer(space, "update_brief", '{"duration_s": 9000}')
    assert "duration_s" in too_long["error"] and "600" in too_long["error"]
    extra = await answer(space, "start_job", '{"planner": "magic"}')
    assert "planner" in extra["error"]
    assert "no job yet" in (await answer(space, "get_plan", "{}"))["error"]
    assert "no job yet" in (await answer(space, "propose", '{"action": "approve"}'))["error"]
    assert "the brief is empty" in (await answer(space, "start_job", "{}"))["error"]
    assert space.draft == new_draft("en") and space.changes == [] and space.job_id is None


async def test_brief_changes_are_diffed_and_a_null_resets(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    done = await answer(space, "update_brief", '{"logline": "rain", "duration_s": 8}')
    assert done["brief"]["logline"] == "rain" and done["brief"]["duration_s"] == 8
    assert space.changes[-1]["diff"] == [{"field": "logline", "from": None, "to": "rain"},
                                         {"field": "duration_s", "from": 15.0, "to": 8}]
    await answer(space, "update_brief", '{"logline": null}')
    assert "logline" not in space.draft
    same = await answer(space, "update_brief", '{"duration_s": 8}')
    assert "nothing changed" in same["note"] and len(space.changes) == 2


async def test_rights_are_explained_before_a_job_exists(tmp_path: Path) -> None:
    space = workspace(tmp_path)
    await answer(space, "update_brief", '{"rights_policy": {"use": "internal"}}')
    rights = await answer(space, "explain_rights", "{}")
    assert {i["id"] for i in rights["items"]} >= {"previz-v1", "animatic-v1"}
    assert any("never published" in lever for lever in rights["would_change_it"])


def test_every_tool_has_a_json_schema_for_its_arguments() -> None:
    specs = {s["function"]["name"]: s["function"] for s in tool_specs()}
    assert set(specs) == set(TOOLS)
    for spec in specs.values():
        assert spec["parameters"]["type"] == "object" and spec["description"]
    assert specs["edit_shot"]["parameters"]["required"] == ["shot_id", "changes"]
