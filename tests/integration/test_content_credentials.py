"""A finished job's content credentials, read back with c2pa-python's own Reader: each clip
lists its keyframe, the video lists every clip, dialogue line and the song, the source types say
which parts a trained model made, and an uploaded (remuxed or re-encoded) copy says it has none.

Both jobs run on the embedded default (previz, animatic, the viseme rules, the shipped voices).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kantoku.planner.rights.c2pa_sign import (
    ALGORITHMIC_MEDIA,
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    PROVENANCE_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
)
from tests.conftest import make_song
from tests.integration.test_jobs import kantoku
from tests.unit.test_c2pa_sign import c2pa_manifest, reencode, remux, source_type

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SONG_RIGHTS = {"title": "夜明け (test song)", "holder": "kantoku project", "license": "CC0-1.0",
               "commercial_use": True}


def run_job(out: Path, example: str, song_file: Path, **changes: Any) -> Path:
    """`kantoku mv` on an example brief with `changes`, cut to `song_file`."""
    document = {**yaml.safe_load((EXAMPLES / example).read_text()), **changes}
    brief = out.with_suffix(".yaml")
    brief.write_text(yaml.safe_dump(document, allow_unicode=True))
    done = kantoku("mv", str(brief), "--song", str(song_file), "--out", str(out), "--yes")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_song(tmp_path_factory.mktemp("song") / "song8.wav", 8)


@pytest.fixture(scope="module")
def music_video(song: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's brief: no dialogue, so nothing in it comes from a trained model."""
    return run_job(tmp_path_factory.mktemp("mv") / "out", "brief.yaml", song)


@pytest.fixture(scope="module")
def dialogue_video(song: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A brief with two spoken lines (neural voices) and a song with its rights."""
    return run_job(tmp_path_factory.mktemp("dialogue") / "out", "city-night.yaml", song,
                   song=SONG_RIGHTS)


def shots(out: Path) -> list[dict[str, Any]]:
    shot_list: list[dict[str, Any]] = json.loads((out / "plan.json").read_text())["shots"]
    return shot_list


def test_each_clip_lists_its_keyframe_as_the_input_it_was_made_from(music_video: Path) -> None:
    for shot in shots(music_video):
        clip = c2pa_manifest(music_video / "shots" / f"{shot['id']}.mp4")
        [keyframe] = clip["ingredients"]
        assert (keyframe["title"], keyframe["relationship"]) == (f"{shot['id']}.png", "inputTo")
        picture = c2pa_manifest(music_video / "shots" / f"{shot['id']}.png")
        assert keyframe["active_manifest"] == picture["label"]


def test_previz_and_animatic_say_algorithmic_media_and_the_video_a_synthetic_composite(
        music_video: Path) -> None:
    for path in sorted((music_video / "shots").iterdir()):
        assert source_type(path) == ALGORITHMIC_MEDIA, path.name
    assert source_type(music_video / "video.mp4") == COMPOSITE_SYNTHETIC
    assert kantoku("rights", "verify", str(music_video)).returncode == 0


def test_the_video_lists_every_clip_every_line_and_the_song(dialogue_video: Path,
                                                            song: Path) -> None:
    expected = []
    for shot in shots(dialogue_video):
        expected.append(f"{shot['id']}.mp4")
        expected += [f"{shot['id']}.line{k}.wav" for k in range(1, len(shot["dialogue"]) + 1)]
    assert sum(name.endswith(".wav") for name in expected) == 2

    video = c2pa_manifest(dialogue_video / "video.mp4")
    listed = [(i["title"], i["relationship"]) for i in video["ingredients"]]
    assert listed == [(name, "componentOf") for name in [*expected, SONG_RIGHTS["title"]]]
    signed_parts = {i["title"]: i.get("active_manifest") for i in video["ingredients"]}
    for name in expected:
        assert signed_parts[name] == c2pa_manifest(dialogue_video / "shots" / name)["label"]
    assert signed_parts[SONG_RIGHTS["title"]] is None  # the holder's file carries no manifest
    custom = next(a["data"] for a in video["assertions"] if a["label"] == PROVENANCE_LABEL)
    assert custom["song"]["sha256"] == hashlib.sha256(song.read_bytes()).hexdigest()

    for name in expected:
        wanted = TRAINED_ALGORITHMIC_MEDIA if name.endswith(".wav") else ALGORITHMIC_MEDIA
        assert source_type(dialogue_video / "shots" / name) == wanted, name
    assert source_type(dialogue_video / "video.mp4") == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert kantoku("rights", "verify", str(dialogue_video)).returncode == 0


@pytest.mark.parametrize("copy", [remux, reencode])
def test_an_uploaded_copy_of_the_video_says_it_carries_no_manifest(
        music_video: Path, tmp_path: Path, copy: Callable[[Path, Path], Path]) -> None:
    uploaded = copy(music_video / "video.mp4", tmp_path / "uploaded.mp4")

    checked = kantoku("rights", "verify", str(uploaded))

    assert checked.returncode == 4
    assert "uploaded.mp4: no C2PA manifest" in checked.stderr
    assert "Re-encoding or even remuxing" in checked.stderr
