"""The embedded LLM: llama-cpp-python's OpenAI-compatible server as a real child process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.settings import CoreSettings
from kantoku.services.llm.catalog import EMBEDDED_LLM
from kantoku.services.llm.hosting import (
    LLMServer,
    answers,
    embedded_endpoint,
    stop_recorded,
)

pytestmark = pytest.mark.integration


def _listening(pid: int) -> set[str]:
    return {c.laddr.ip for c in psutil.Process(pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN}


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_the_embedded_server_lists_the_model_streams_a_chat_and_stops(tmp_path: Path) -> None:
    import openai

    server = LLMServer(settings=CoreSettings(home=tmp_path))
    with server as endpoint:
        pid = server.pid
        assert pid is not None
        assert endpoint.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert endpoint.model == EMBEDDED_LLM and endpoint.started_here
        assert _listening(pid) == {"127.0.0.1"}
        client = openai.OpenAI(base_url=endpoint.base_url, api_key="none", max_retries=0)
        assert [m.id for m in client.models.list()] == [EMBEDDED_LLM]
        stream = client.chat.completions.create(
            model=endpoint.model, messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=12, temperature=0, stream=True)
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip()
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert _gone(pid)
    assert not answers(endpoint.base_url, endpoint.model, timeout_s=0.5)
    server.stop()  # stopping twice is fine


def test_embedded_endpoint_uses_the_recorded_server_else_starts_its_own(tmp_path: Path) -> None:
    settings = CoreSettings(home=tmp_path)

    async def endpoints() -> tuple:
        async with embedded_endpoint(settings=settings) as private:
            assert answers(private.base_url, private.model)
            shared = LLMServer(settings=settings, detached=True)
            await shared.astart()
            record = shared.detach()
            try:
                (tmp_path / "stack.json").write_text(json.dumps({"llm": record}))
                async with embedded_endpoint(settings=settings) as recorded:
                    pass
            finally:
                assert stop_recorded(record)
        return private, recorded, record

    private, recorded, record = asyncio.run(endpoints())
    assert private.started_here and private.model == EMBEDDED_LLM
    assert not answers(private.base_url, private.model, timeout_s=0.5)  # stopped after the block
    assert not recorded.started_here and recorded.base_url == record["base_url"]
    assert _gone(record["pid"])
    assert not stop_recorded(record)  # already gone: nothing else is signalled


def test_a_server_that_dies_at_start_quotes_why(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"this is not a GGUF file")
    with pytest.raises(KantokuError) as info:
        LLMServer(bad, settings=CoreSettings(home=tmp_path)).start()
    assert info.value.reason == "LLM_START_FAILED"
    assert info.value.category == Category.UNAVAILABLE
    assert "broken.gguf" in info.value.message  # llama_cpp's "Failed to load model from file"
    missing = tmp_path / "missing.gguf"
    with pytest.raises(KantokuError, match="missing.gguf is not a file") as info:
        LLMServer(missing, settings=CoreSettings(home=tmp_path)).start()
    assert info.value.category == Category.NOT_FOUND


def test_a_recorded_pid_that_is_another_process_is_not_stopped() -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = psutil.Process(other.pid).create_time()
        assert not stop_recorded({"pid": other.pid, "create_time": started - 100})
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_kantoku_serve_llm_prints_the_environment_and_answers(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, KANTOKU_HOME=str(tmp_path))
    cli = subprocess.Popen([sys.executable, "-m", "kantoku.agents.cli", "serve", "llm",
                            "--port", str(port)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert cli.stdout is not None
        lines = [cli.stdout.readline().strip(), cli.stdout.readline().strip()]
        assert lines == [f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1",
                         f"KANTOKU_LLM_MODEL={EMBEDDED_LLM}"], cli.stderr.read()
        assert answers(f"http://127.0.0.1:{port}/v1", EMBEDDED_LLM)
        children = psutil.Process(cli.pid).children(recursive=True)
        assert children
        cli.send_signal(signal.SIGINT)  # Ctrl-C
        assert cli.wait(timeout=15) == 130
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert all(_gone(child.pid) for child in children)
    assert not answers(f"http://127.0.0.1:{port}/v1", EMBEDDED_LLM, timeout_s=0.5)


def test_a_stream_is_never_cut_by_another_request_and_stops_when_its_client_goes(
        tmp_path: Path) -> None:
    import threading

    import httpx

    endless = {"messages": [{"role": "user", "content": "Tell a very long story."}],
               "temperature": 0.8, "stream": True, "logit_bias": {"2": -100}}  # no end token
    short = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    with LLMServer(settings=CoreSettings(home=tmp_path)) as endpoint:
        url = f"{endpoint.base_url}/chat/completions"
        finish: list[str | None] = []

        def stream_60() -> None:
            with httpx.stream("POST", url, json={"model": endpoint.model, **endless,
                                                 "max_tokens": 60}, timeout=60) as response:
                chunks = [json.loads(line[6:]) for line in response.iter_lines()
                          if line.startswith("data: {")]
            finish.append(chunks[-1]["choices"][0]["finish_reason"])

        reader = threading.Thread(target=stream_60)
        reader.start()
        time.sleep(0.3)
        assert httpx.post(url, json={"model": endpoint.model, **short}, timeout=60).is_success
        reader.join(60)
        assert finish == ["length"]  # ran to its max_tokens, not ended early by the second call

        with httpx.Client(timeout=60) as client, client.stream(
                "POST", url, json={"model": endpoint.model, **endless, "max_tokens": 2000}) as r:
            next(r.iter_lines())
            time.sleep(0.5)  # then the client goes, ~1950 tokens (~25 s) before its end
        started = time.monotonic()
        assert httpx.post(url, json={"model": endpoint.model, **short}, timeout=60).is_success
        assert time.monotonic() - started < 5
