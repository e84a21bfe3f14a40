"""docs/ARCHITECTURE.md is the project's map: its tree must match the folders on disk."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
TOP = ("agents", "planner", "services", "protos")


def documented_paths(text: str) -> set[str]:
    """Paths named in the doc's tree block: `name/` opens a folder for the lines indented under
    it; the names before a description are comma-separated paths relative to that folder."""
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    paths: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, folder path)
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        while folders and folders[-1][0] >= indent:
            folders.pop()
        parent = folders[-1][1] if folders else ""
        for name in (n.strip() for n in names.split(",")):
            path = parent + name
            paths.add(path.rstrip("/"))
            if name.endswith("/"):
                folders.append((indent, path))
    for path in list(paths):  # every folder above a named path is named too
        parts = path.split("/")
        paths.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return paths


def modules_on_disk() -> set[str]:
    found: set[str] = set()
    for top in TOP:
        for path in (ROOT / top).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "_pb2" in path.name or "__pycache__" in relative.parts:
                continue
            found.update(str(Path(*relative.parts[:i])) for i in range(1, len(relative.parts)))
            if path.name != "__init__.py":
                found.add(str(relative))
    return found


def test_every_module_and_folder_is_on_the_map() -> None:
    missing = sorted(modules_on_disk() - documented_paths(DOC.read_text(encoding="utf-8")))
    assert missing == [], f"add these to docs/ARCHITECTURE.md's tree: {missing}"


def test_everything_on_the_map_exists() -> None:
    stale = sorted(p for p in documented_paths(DOC.read_text(encoding="utf-8"))
                   if not (ROOT / p).exists())
    assert stale == [], f"docs/ARCHITECTURE.md names paths that are gone: {stale}"


def test_the_map_parser_reads_nested_folders() -> None:
    text = "## The tree\n```\na/\n  b.py   what b does, c.py\n  d/\n    e.py, f.py\ng.py\n```\n"
    assert documented_paths(text) == {"a", "a/b.py", "a/d", "a/d/e.py", "a/d/f.py", "g.py"}
