"""`kantoku up`, `status`, a call without --server, and `down`, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))


def _run(home: Path, *args: str, timeout: int = 240,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("KANTOKU_AUTH_TOKEN", "OPENAI_BASE_URL")}
    env = dict(base, KANTOKU_HOME=str(home), **(env or {}))
    return subprocess.run([KANTOKU, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_up_status_call_down(tmp_path: Path) -> None:
    from tests.conftest import free_port

    home = tmp_path / "home"
    port, studio_port = free_port(), free_port()
    try:
        up = _run(home, "up", "--grpc-port", str(port), "--studio-port", str(studio_port))
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{port}" in up.stdout
        studio = f"http://127.0.0.1:{studio_port}/"
        assert studio in up.stdout
        llm = json.loads((home / "stack.json").read_text())["llm"]
        assert llm["base_url"] in up.stdout  # OPENAI_BASE_URL unset: the embedded LLM started
        status = _run(home, "status")
        assert status.returncode == 0, status.stderr
        assert status.stdout.count("RUNNING") == 6  # tts, motion, asr, image, video, studio
        assert re.search(r"studio\s.*RUNNING.*" + re.escape(studio), status.stdout)
        # The studio on Serve's HTTP proxy: its page, and its API on the same stack.
        import httpx

        assert "kantoku studio" in httpx.get(studio, timeout=30).text
        assert httpx.get(f"{studio}v1/jobs", timeout=30).json() == []
        assert re.search(r"llm\s.*answering", status.stdout)
        assert "not answering" not in status.stdout
        out = tmp_path / "hi.wav"
        speech = _run(home, "tts", "こんにちは。", "-o", str(out))
        assert speech.returncode == 0, speech.stderr
        record = json.loads(out.with_name("hi.wav.json").read_text())
        assert record["provenance"]["worker"]["hosting"] == "ray-serve"
        assert record["voice_id"] == "jf_alpha"
    finally:
        down = _run(home, "down")
    assert down.returncode == 0, down.stderr
    from kantoku.services.llm.hosting import recorded_running

    assert not recorded_running(llm)
    after = _run(home, "status")
    assert after.returncode == 7 and "kantoku up" in after.stderr


@pytest.mark.slow
def test_up_joins_a_running_cluster_on_loopback_and_down_leaves_it_running(
        tmp_path: Path) -> None:
    import psutil

    from kantoku.services.local_stack import _ray_cli, _stop_head
    from tests.conftest import free_port

    home, port = tmp_path / "home", free_port()
    mine = subprocess.run([_ray_cli(), "start", "--head", "--num-cpus=2",
                           "--include-dashboard=false", "--disable-usage-stats",
                           f"--port={free_port()}"], capture_output=True, text=True, timeout=120)
    assert mine.returncode == 0, mine.stderr
    gcs = re.search(r"--address='([^']+)'", mine.stdout).group(1)  # the user's own cluster
    try:
        up = _run(home, "up", "--grpc-port", str(port), "--no-studio")
        assert up.returncode == 0, up.stderr
        listening = {c.laddr.ip.removeprefix("::ffff:") for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
        assert listening == {"127.0.0.1"}  # not "::", every interface
        down = _run(home, "down")
        assert down.returncode == 0, down.stderr
        raylets = [p for p in psutil.process_iter(["cmdline"])
                   if "raylet" in " ".join(p.info["cmdline"] or []) and any(
                       gcs in arg for arg in p.info["cmdline"] or [])]
        assert raylets, "kantoku down stopped a Ray cluster it did not start"
        assert _run(home, "status").returncode == 7
    finally:
        _stop_head(gcs)
