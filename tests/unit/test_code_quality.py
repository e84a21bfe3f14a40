"""Lint and type-check the project, so CI fails on either."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_ruff_passes() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_passes() -> None:
    result = subprocess.run([str(BIN / "mypy"), "services", "planner", "agents"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout


# Imports flow one way: agents -> planner -> services -> protos (docs/ARCHITECTURE.md).
LAYERS = {"services": ("kantoku.agents", "kantoku.planner"), "planner": ("kantoku.agents",)}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth (imports inside functions count too)."""
    import ast

    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def upward_imports(folder: str) -> list[str]:
    forbidden = LAYERS[folder]
    return [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in sorted((ROOT / folder).rglob("*.py"))
            for line, module in imported_modules(path)
            if any(module == f or module.startswith(f + ".") for f in forbidden)]


def test_planner_never_imports_the_products() -> None:
    assert upward_imports("planner") == []


def test_services_never_import_the_planner_or_the_products() -> None:
    assert upward_imports("services") == []


def test_the_layer_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from kantoku.agents.cli import app\n"
                      "from kantoku import planner\n")
    assert sorted(m for _, m in imported_modules(module)) == [
        "kantoku", "kantoku.agents.cli", "kantoku.agents.cli.app", "kantoku.planner"]
