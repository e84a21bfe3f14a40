"""The `kantoku` command line as a user types it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from kantoku.agents import cli


def test_version_prints_the_installed_version() -> None:
    done = subprocess.run([sys.executable, "-m", "kantoku.agents.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"kantoku {importlib.metadata.version('kantoku')}\n"


def test_version_without_package_metadata_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == "kantoku unknown\n"


def test_serve_refuses_llm_mixed_with_grpc_services() -> None:
    done = subprocess.run([sys.executable, "-m", "kantoku.agents.cli", "serve", "llm", "tts"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "kantoku serve llm" in done.stderr and "--standalone" in done.stderr


def test_avatar_refuses_a_wide_host_without_a_token_and_a_bad_persona(tmp_path) -> None:  # noqa: ANN001
    done = subprocess.run([sys.executable, "-m", "kantoku.agents.cli", "avatar", "--host",
                           "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "KANTOKU_AUTH_TOKEN" in done.stderr and "--host" in done.stderr
    persona = tmp_path / "p.yaml"
    persona.write_text("id: x\nname: X\nlanguage: fr\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "kantoku.agents.cli", "avatar", "--persona",
                           str(persona)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{persona}: language:" in done.stderr.replace("\n", "") and "Traceback" not in \
        done.stderr
