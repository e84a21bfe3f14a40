"""`kantoku up` and the embedded LLM: started unless OPENAI_BASE_URL is set, never left behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kantoku.services import local_stack

LLM = {"pid": 4242, "create_time": 1.0, "port": 8080, "base_url": "http://127.0.0.1:8080/v1",
       "model": "smollm2-135m-instruct", "log": None}


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`up` with Ray and Serve replaced by a record, and the LLM's start and stop logged."""
    calls: dict[str, Any] = {"started": 0, "stopped": [], "ray_fails": False}
    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    def ray_and_serve(*args: Any) -> dict[str, Any]:
        if calls["ray_fails"]:
            raise RuntimeError("ray start failed")
        return {"grpc_address": "127.0.0.1:9000", "services": []}

    def start_llm(on_step: Any) -> dict[str, Any]:
        calls["started"] += 1
        return dict(LLM)

    monkeypatch.setattr(local_stack, "_start_ray_and_serve", ray_and_serve)
    monkeypatch.setattr(local_stack, "_start_llm", start_llm)
    monkeypatch.setattr("kantoku.services.llm.hosting.stop_recorded",
                        lambda record: calls["stopped"].append(record["pid"]) or True)
    calls["record"] = tmp_path / "stack.json"
    return calls


def test_up_records_the_llm_it_started(stack: dict[str, Any]) -> None:
    record = local_stack.up(9000, None, [], lambda step: None)
    assert stack["started"] == 1
    assert record["llm"] == LLM
    assert json.loads(stack["record"].read_text())["llm"] == LLM


def test_up_leaves_the_llm_to_openai_base_url(stack: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
    record = local_stack.up(9000, None, [], lambda step: None)
    assert stack["started"] == 0 and record["llm"] is None


def test_a_failed_up_stops_the_llm_it_started(stack: dict[str, Any]) -> None:
    stack["ray_fails"] = True
    with pytest.raises(RuntimeError):
        local_stack.up(9000, None, [], lambda step: None)
    assert stack["stopped"] == [LLM["pid"]]
    assert not stack["record"].exists()


def test_down_stops_the_recorded_llm(stack: dict[str, Any]) -> None:
    stack["record"].write_text(json.dumps({"llm": LLM}))  # no Ray recorded
    steps: list[str] = []
    local_stack.down(steps.append)
    assert stack["stopped"] == [LLM["pid"]]
    assert any("embedded LLM" in step for step in steps)
