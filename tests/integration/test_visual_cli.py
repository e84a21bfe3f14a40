"""`kantoku image`, `kantoku video` and `kantoku models add` against a real standalone server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kantoku.services.video.encode import probe_mp4
from tests.integration.test_standalone_cli import _wait_healthy

pytestmark = pytest.mark.integration
KANTOKU = str(Path(sys.executable).with_name("kantoku"))


@pytest.fixture(scope="module")
def address():  # noqa: ANN201
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen([KANTOKU, "serve", "image", "video", "--standalone", "--port",
                                str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        _wait_healthy(f"127.0.0.1:{port}", process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KANTOKU_AUTH_TOKEN"}
    return subprocess.run([KANTOKU, *args], env=env, capture_output=True, text=True, timeout=300)


def test_image_then_animatic_with_parallax(address, tmp_path: Path) -> None:  # noqa: ANN001
    still = tmp_path / "shot1.png"
    made = _cli("image", "Aoi sings on a rooftop at night", "--shot-size", "wide", "--character",
                "Aoi:red jacket", "--location", "city rooftop", "--time-of-day", "night",
                "--width", "360", "--height", "640", "--seed", "2", "--server", address,
                "-o", str(still))
    assert made.returncode == 0, made.stderr
    record = json.loads((tmp_path / "shot1.png.json").read_text())
    assert len(record["layers"]) == 3
    assert record["provenance"]["output"]["sha256"] == record["image"]["sha256"]

    clip = tmp_path / "shot1.mp4"
    made = _cli("video", "--image", str(still), "--camera", "dolly_in", "--duration", "1.5",
                "--fps", "24", "--server", address, "-o", str(clip))
    assert made.returncode == 0, made.stderr
    info = probe_mp4(clip.read_bytes())
    assert (info["frames"], info["width"], info["height"]) == (36, 360, 640)
    video_record = json.loads((tmp_path / "shot1.mp4.json").read_text())
    assert video_record["provenance"]["parameters"]["parallax"] is True


@pytest.mark.parametrize(("args", "words"), [
    (["image", "x", "--width", "0"], "width_px: 0 is outside"),
    (["image", "x", "--height", "99999"], "height_px: 99999 is outside"),
    (["image", "x", "--model", "nope"], "available: previz-v1"),
    (["image", "x", "--shot-size", "huge"], "--shot-size"),
    (["video", "--duration", "0", "--image", "{tmp}/k.png"], "duration_s"),
    (["video", "--duration", "1", "--image", "{tmp}/missing.png"], "is not a file"),
    (["video", "--duration", "1", "--camera", "spin", "--image", "{tmp}/k.png"], "--camera"),
])
def test_bad_input_is_one_line(address, tmp_path: Path, args, words) -> None:  # noqa: ANN001
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp_path / "k.png")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = _cli(*argv, "--server", address, "-o", str(tmp_path / "out.bin"))
    assert result.returncode == (3 if "available" in words else 2), result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "out.bin").exists()


def test_models_add_refuses_pickles_and_lists_additions(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "transformer").mkdir(parents=True)
    (model / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    (model / "transformer" / "weights.ckpt").write_bytes(b"pickle")
    home = {"KANTOKU_HOME": str(tmp_path / "home")}
    env = {**os.environ, **home}
    refused = subprocess.run([KANTOKU, "models", "add", "my-flux", "--path", str(model),
                              "--kind", "image", "--license", "Apache-2.0"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "pickle checkpoints are refused" in refused.stderr
    (model / "transformer" / "weights.ckpt").unlink()
    (model / "transformer" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    added = subprocess.run([KANTOKU, "models", "add", "my-flux", "--path", str(model), "--kind",
                            "image", "--license", "Apache-2.0", "--commercial", "--holder",
                            "Studio A"], env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([KANTOKU, "models", "list", "--kind", "image"],
                            env={**env, "COLUMNS": "200"}, capture_output=True, text=True)
    assert "my-flux" in listed.stdout and "Studio A" in listed.stdout
