"""What a hostile or careless user hands in is refused at the door: files that are not pictures,
paths that lead out of the brief's folder, devices, decompression bombs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from kantoku.agents import cli
from kantoku.planner.planning.brief import load_brief
from kantoku.services._core.errors import KantokuError


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            *args: str) -> tuple[int, str]:
    """`kantoku ARGS` in this process: its exit code and what it printed on stderr."""
    monkeypatch.setattr(sys, "argv", ["kantoku", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    return int(done.value.code or 0), " ".join(capsys.readouterr().err.split())


def write_brief(folder: Path, reference: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "brief.yaml"
    path.write_text(yaml.safe_dump({
        "title": "Roof", "duration_s": 4,
        "characters": [{"name": "Bo"}, {"name": "Aki", "reference": {
            "path": reference, "holder": "A. Photographer", "consent": True}}]}))
    return path


def picture(path: Path, size: tuple[int, int] = (32, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "red").save(path)
    return path


@pytest.mark.parametrize("make", ["absolute", "dotdot", "symlink"])
def test_a_reference_outside_the_briefs_folder_is_refused(
        make: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    outside = picture(tmp_path / "elsewhere" / "face.png")
    folder = tmp_path / "job"
    if make == "symlink":
        folder.mkdir()
        (folder / "face.png").symlink_to(outside)
        reference = "face.png"
    else:
        reference = str(outside) if make == "absolute" else "../elsewhere/face.png"
    code, message = run_cli(monkeypatch, capsys, "plan", str(write_brief(folder, reference)))
    assert code == 2
    assert "characters[1].reference.path" in message and "outside the brief's folder" in message
    assert "KANTOKU_REFERENCE_ROOTS" in message


def test_an_allowed_root_lets_a_reference_in(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    outside = picture(tmp_path / "photos" / "face.png")
    monkeypatch.setenv("KANTOKU_REFERENCE_ROOTS", str(tmp_path / "photos"))
    brief = load_brief(write_brief(tmp_path / "job", str(outside)))
    assert brief.characters[1].reference is not None
    assert brief.characters[1].reference.path == outside.resolve()


@pytest.mark.parametrize("content", ["text", "bomb", "device"])
def test_a_reference_that_is_not_a_picture_is_refused(
        content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    reference = folder / "face.png"
    if content == "text":
        reference.write_text("root:x:0:0:root:/root:/bin/bash\n")
    elif content == "bomb":  # 10 000 × 10 000 pixels in a few kilobytes of PNG
        Image.new("1", (10_000, 10_000)).save(reference)
    else:
        reference.symlink_to(os.devnull)
    code, message = run_cli(monkeypatch, capsys, "plan", str(write_brief(folder, "face.png")))
    assert code == 2
    assert "characters[1].reference.path" in message
    rule = {"text": "is not a PNG, JPEG, WEBP picture", "bomb": "over the limit of 40,000,000",
            "device": "is not a regular file"}[content]
    assert rule in message


def test_the_policy_gate_refuses_a_reference_that_stopped_being_a_picture(
        tmp_path: Path) -> None:
    from kantoku.planner.planning.plan import Plan
    from kantoku.planner.rights.policy import check_policy
    from kantoku.services._core.registry import ModelRegistry

    face = picture(tmp_path / "job" / "face.png")
    brief = load_brief(write_brief(tmp_path / "job", "face.png"))
    face.write_text("not a picture any more")
    plan = Plan.model_validate({"title": "Roof", "width_px": 720, "height_px": 1280, "fps": 30,
                                "duration_s": 4, "shots": []})
    with pytest.raises(KantokuError) as refused:
        check_policy(brief, plan, ModelRegistry(), song=None)
    assert refused.value.category.exit_code == 2
    assert refused.value.message.startswith("characters[1].reference.path:")


def test_the_image_command_refuses_a_reference_that_is_not_a_picture(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, message = run_cli(monkeypatch, capsys, "image", "Aoi", "-o", str(tmp_path / "o.png"),
                            "--reference", f"{secret}:Aoi", "--server", "127.0.0.1:1")
    assert code == 2
    assert message.startswith(f"error: --reference: {secret} is not a PNG")


def fake_pipeline(folder: Path) -> Path:
    """A folder `kantoku models add --kind image` accepts (it hashes, it does not load)."""
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    (folder / "transformer" / "model.safetensors").write_bytes(b"weights")
    return folder


@pytest.mark.parametrize("model_id", ["x$(touch pwned)", "../up", "a/b", "two\nlines", ".hidden"])
def test_models_add_refuses_an_id_that_is_not_a_slug(
        model_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path / "home"))
    code, message = run_cli(monkeypatch, capsys, "models", "add", model_id, "--path",
                            str(fake_pipeline(tmp_path / "m")), "--kind", "image",
                            "--license", "MIT")
    assert code == 2
    assert message.startswith("error: ID:") and "is not a model id" in message
    assert not (tmp_path / "home" / "models.yaml").exists()


def test_a_brief_and_the_registry_file_refuse_ids_that_are_not_slugs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump({"title": "Roof", "duration_s": 4,
                                    "models": {"image": "$(reboot)"}}))
    code, message = run_cli(monkeypatch, capsys, "plan", str(path))
    assert code == 2 and "models.image: '$(reboot)' is not a model id" in message

    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "models.yaml").write_text(yaml.safe_dump({"models": [{
        "id": "../../etc", "kind": "image", "version": "1", "family": "flux", "source": "x",
        "license": "MIT", "commercial_use": True, "rights_holder": "me",
        "training_data": "none"}]}))
    code, message = run_cli(monkeypatch, capsys, "models", "list")
    assert code == 2 and "models.0.id: '../../etc' is not a model id" in message


def test_the_serve_hint_is_shell_quoted_and_keeps_the_served_models(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shlex

    from typer.testing import CliRunner

    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KANTOKU_IMAGE_MODELS", '["previz-v1"]')
    result = CliRunner().invoke(cli.app, [
        "models", "add", "flux-dev", "--path", str(fake_pipeline(tmp_path / "m")),
        "--kind", "image", "--license", "MIT"])
    assert result.exit_code == 0, result.output
    hint = "".join(result.output.split()).partition("serveitwith")[2]
    assert shlex.split(hint) == ['KANTOKU_IMAGE_MODELS=["previz-v1","flux-dev"]']

    lora = tmp_path / "style.safetensors"
    lora.write_bytes(b"lora")
    result = CliRunner().invoke(cli.app, ["models", "add", "my-style", "--path", str(lora),
                                          "--kind", "adapter", "--license", "MIT"])
    assert result.exit_code == 0, result.output
    assert "KANTOKU_ADAPTER_MODELS" not in result.output
    assert "adapter_id" in result.output


def test_up_refuses_a_wide_ingress_without_a_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KANTOKU_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KANTOKU_AUTH_TOKEN", raising=False)
    code, message = run_cli(monkeypatch, capsys, "up", "--host", "0.0.0.0")
    assert code == 2
    assert message.startswith("error: --host: 0.0.0.0 lets other machines call every service")
    assert "KANTOKU_AUTH_TOKEN" in message
    assert not (tmp_path / "home" / "stack.json").exists()
