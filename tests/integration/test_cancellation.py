"""A real standalone server process: a cancelled render stops burning CPU, SIGTERM stops it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from PIL import Image

from kantoku.v1 import video_pb2, video_pb2_grpc
from tests.integration.test_standalone_cli import _wait_healthy

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))


@pytest.fixture
def video_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    from tests.conftest import free_port

    port = free_port()
    env = dict(os.environ, KANTOKU_HOME=str(tmp_path / "home"))
    process = subprocess.Popen([KANTOKU, "serve", "video", "--standalone", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    address = f"127.0.0.1:{port}"
    try:
        _wait_healthy(address, process)
        yield address, process, tmp_path / "home"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _long_render(address: str, home: Path) -> grpc.Future:
    """A minute of animatic at 60 fps (thousands of frames), started and progressing."""
    from kantoku.services._core.assets import AssetStore

    buffer = io.BytesIO()
    Image.new("RGB", (720, 1280), (40, 90, 160)).save(buffer, "PNG")
    keyframe = AssetStore(home / "assets").put_bytes(buffer.getvalue(), "image/png")
    channel = grpc.insecure_channel(address)
    call = video_pb2_grpc.VideoServiceStub(channel).GenerateVideo(video_pb2.GenerateVideoRequest(
        keyframe=keyframe, duration_s=60, fps=60, camera_move=video_pb2.CAMERA_MOVE_ZOOM_IN))
    for response in call:
        if response.HasField("progress") and response.progress.step >= 10:
            return call  # rendering for real
    raise AssertionError("the render ended before it was cancelled")


def _goes_idle(process: psutil.Process, checks: int = 20, window_s: float = 0.5) -> bool:
    """Whether the process's CPU time stops increasing in one of the next `checks` windows."""
    def used() -> float:
        times = process.cpu_times()
        return times.user + times.system

    before = used()
    for _ in range(checks):
        time.sleep(window_s)
        now = used()
        if now - before < 0.05:
            return True
        before = now
    return False


def test_cancelled_render_stops_the_backend(video_server) -> None:  # noqa: ANN001
    address, process, home = video_server
    call = _long_render(address, home)
    call.cancel()
    assert _goes_idle(psutil.Process(process.pid)), "the server kept rendering after the cancel"
    assert process.poll() is None  # and it still serves


def test_sigterm_during_a_render_exits_promptly(video_server) -> None:  # noqa: ANN001
    address, process, home = video_server
    call = _long_render(address, home)
    process.send_signal(signal.SIGTERM)
    grace_s = 5.0  # CoreSettings.grace_period_s
    assert process.wait(timeout=grace_s + 10) == 0
    with pytest.raises(grpc.RpcError):
        for _ in call:
            pass
