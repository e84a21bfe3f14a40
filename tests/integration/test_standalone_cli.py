"""A real standalone server process, checked with the standard health and reflection clients,
and driven by the `kantoku` CLI the way a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))


def _wait_healthy(address: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {process.stderr.read()}")
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return
            except grpc.RpcError:
                time.sleep(0.3)
    raise AssertionError("server did not become healthy")


@pytest.fixture(scope="module")
def served(tmp_path_factory):  # noqa: ANN001, ANN201
    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, KANTOKU_AUTH_TOKEN="cli-token")
    process = subprocess.Popen([KANTOKU, "serve", "tts", "motion", "--standalone", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        _wait_healthy(address, process)
        yield address, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _cli(*args: str, token: str | None = "cli-token") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("KANTOKU_AUTH_TOKEN", None)
    if token:
        env["KANTOKU_AUTH_TOKEN"] = token
    return subprocess.run([KANTOKU, *args], env=env, capture_output=True, text=True, timeout=120)


def test_health_per_service(served) -> None:  # noqa: ANN001
    address, _ = served
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "kantoku.v1.TtsService", "kantoku.v1.MotionService"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=name)).status == \
                health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="kantoku.v1.Nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_streams_each_services_status(served) -> None:  # noqa: ANN001
    address, _ = served
    expected = {"": health_pb2.HealthCheckResponse.SERVING,
                "kantoku.v1.TtsService": health_pb2.HealthCheckResponse.SERVING,
                "kantoku.v1.Nope": health_pb2.HealthCheckResponse.SERVICE_UNKNOWN}
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name, status in expected.items():
            watch = stub.Watch(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert next(watch).status == status, name
            watch.cancel()  # a watch stays open for changes until the client leaves


def test_reflection_lists_and_describes_services(served) -> None:  # noqa: ANN001
    address, _ = served
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"kantoku.v1.TtsService", "kantoku.v1.MotionService",
                "grpc.health.v1.Health"} <= services
        from google.protobuf.descriptor_pool import DescriptorPool

        pool = DescriptorPool(database)
        method = pool.FindServiceByName("kantoku.v1.TtsService").FindMethodByName(
            "SynthesizeSpeech")
        assert method.server_streaming and method.output_type.name == "SynthesizeSpeechResponse"


def test_cli_tts_then_motion(served, tmp_path: Path) -> None:  # noqa: ANN001
    address, _ = served
    out = tmp_path / "line.wav"
    result = _cli("tts", "Lights, camera, action.", "--server", address, "-o", str(out))
    assert result.returncode == 0, result.stderr
    sidecar = json.loads((tmp_path / "line.wav.json").read_text())
    with wave.open(str(out)) as wav:
        duration = wav.getnframes() / wav.getframerate()
    assert sidecar["duration_s"] == pytest.approx(duration, abs=1e-3)
    assert {"start_s", "end_s", "word"} <= set(sidecar["words"][0])
    assert [w["word"] for w in sidecar["words"]] == ["Lights", "camera", "action"]
    assert sidecar["provenance"]["model"]["model_id"] == "en_US-joe-medium"
    assert sidecar["provenance"]["worker"]["hosting"] == "standalone"

    motion_out = tmp_path / "line.motion.json"
    result = _cli("motion", str(tmp_path / "line.wav.json"), "--server", address,
                  "-o", str(motion_out))
    assert result.returncode == 0, result.stderr
    motion = json.loads(motion_out.read_text())
    assert len(motion["visemes"]["frames"]) == pytest.approx(duration * 30, abs=1)
    assert motion["provenance"]["inputs"][0]["sha256"] == sidecar["provenance"]["output"]["sha256"]


@pytest.mark.parametrize(("args", "token", "code", "words"), [
    (["tts", "", "-o", "{tmp}/x.wav"], "cli-token", 2, "text: must not be empty"),
    (["tts", "x" * 5001, "-o", "{tmp}/x.wav"], "cli-token", 2, "5000-character limit"),
    (["tts", "hi", "--voice", "bob", "-o", "{tmp}/x.wav"], "cli-token", 3, "available voices"),
    (["tts", "hi", "-o", "{tmp}/x.wav"], None, 5, "KANTOKU_AUTH_TOKEN"),
    (["tts", "hi", "-o", "{tmp}/x.wav"], "wrong", 5, "token is wrong"),
    (["motion", "{tmp}/missing.wav.json", "-o", "{tmp}/m.json"], "cli-token", 2, "no such file"),
    (["motion", "{tmp}/garbage.json", "-o", "{tmp}/m.json"], "cli-token", 2, "not valid JSON"),
])
def test_cli_errors_are_one_readable_line(served, tmp_path: Path, args, token, code,  # noqa: ANN001
                                          words) -> None:
    address, _ = served
    (tmp_path / "garbage.json").write_text("{not json")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args] + ["--server", address]
    result = _cli(*argv, token=token)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "x.wav").exists()


def test_cli_without_server_says_what_to_do(tmp_path: Path) -> None:
    env_home = tmp_path / "empty-home"
    result = subprocess.run([KANTOKU, "tts", "hi", "-o", str(tmp_path / "x.wav")],
                            env=dict(os.environ, KANTOKU_HOME=str(env_home)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 7
    assert "kantoku up" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_shuts_down_gracefully(tmp_path: Path) -> None:
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen([KANTOKU, "serve", "motion", "--standalone", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_healthy(f"127.0.0.1:{port}", process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_models_list_shows_rights() -> None:
    result = _cli("models", "list", "--kind", "tts")
    assert result.returncode == 0, result.stderr
    for text in ("en_US-joe-medium", "jf_alpha", "CC0-1.0", "Apache-2.0"):
        assert text in result.stdout


def test_cli_with_nothing_listening_says_what_to_do(tmp_path: Path) -> None:
    from tests.conftest import free_port

    address = f"127.0.0.1:{free_port()}"
    result = _cli("voices", "--server", address)
    assert result.returncode == 7
    assert f"cannot reach a kantoku server at {address}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_hosting_choice_is_refused() -> None:
    result = _cli("serve", "tts")
    assert result.returncode == 2 and "--standalone" in result.stderr
