"""The timeline as the place to edit: change it, and `kantoku edit` re-renders only the edit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import opentimelineio as otio
import pytest

from tests.conftest import make_song
from tests.integration.test_jobs import kantoku, ledger, server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RENDERS = ("image", "video", "tts", "motion")


@pytest.fixture(scope="module")
def finished(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("edit")
    song = make_song(folder / "song.wav", 8)
    out = folder / "out"
    done = kantoku("mv", str(ROOT / "examples" / "brief.yaml"), "--song", str(song),
                   "--out", str(out), "--yes", "--server", server)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def job(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished job's folder (the job itself lives in KANTOKU_HOME)."""
    return Path(shutil.copytree(finished, tmp_path / "job"))


def frames_of(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_an_edited_timeline_re_renders_exactly_the_changed_shots(server: str,  # noqa: F811
                                                                 job: Path) -> None:
    timeline = otio.adapters.read_from_file(str(job / "timeline.otio"))
    track = timeline.tracks[0]
    names = [clip.name for clip in track]
    trimmed, prompted, removed = names[1], names[2], names[3]
    before = {clip.name: round(clip.source_range.duration.value) for clip in track}
    track[1].source_range = otio.opentime.TimeRange(
        track[1].source_range.start_time, otio.opentime.RationalTime(before[trimmed] - 10, 30))
    track[2].metadata["kantoku"]["image_prompt"] = "a red umbrella alone in the rain"
    del track[3]
    edited = job.parent / "edited.otio"
    otio.adapters.write_to_file(timeline, str(edited))

    done = kantoku("edit", str(job), "--timeline", str(edited), "--yes", "--server", server)

    assert done.returncode == 0, done.stderr
    assert "3 render step(s)" in " ".join(done.stderr.split())
    rendered = {(e["kind"], e["shot_id"]) for e in ledger(job)
                if e["kind"] in RENDERS and not e["cache_hit"]}
    assert rendered == {("video", trimmed), ("image", prompted), ("video", prompted)}
    cached = {(e["kind"], e["shot_id"]) for e in ledger(job)
              if e["kind"] in RENDERS and e["cache_hit"]}
    assert {shot for kind, shot in cached if kind == "video"} == \
        set(names) - {removed, prompted, trimmed}
    assert {shot for kind, shot in cached if kind == "image"} == set(names) - {removed, prompted}
    plan = json.loads((job / "plan.json").read_text())
    assert [s["id"] for s in plan["shots"]] == [n for n in names if n != removed]
    assert plan["planner"] == "edit"
    expected = sum(before.values()) - 10 - before[removed]
    assert frames_of(job / "video.mp4") == expected
    edit = next(e for e in ledger(job) if e["kind"] == "edit")
    assert edit["data"]["parent_job"] == json.loads(
        (job / "versions" / "v1" / "job.json").read_text())["job_id"]
    for version in (job, job / "versions" / "v1"):
        verified = kantoku("rights", "verify", str(version))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    assert frames_of(job / "versions" / "v1" / "video.mp4") == sum(before.values())

    # An older version replaced by another job's folder (valid on its own) is named.
    shutil.rmtree(job / "versions" / "v1")
    shutil.copytree(job, job / "versions" / "v1", ignore=shutil.ignore_patterns("versions"))
    swapped = kantoku("rights", "verify", str(job))
    assert swapped.returncode == 4
    assert "versions/v1: holds job" in swapped.stderr and "was edited from" in swapped.stderr


def test_a_timeline_back_from_an_editor_unchanged_makes_no_new_version(job: Path) -> None:
    exported = kantoku("export", str(job), "--format", "fcp7")
    assert exported.returncode == 0, exported.stderr

    done = kantoku("edit", str(job), "--timeline", str(job / "export" / "timeline.xml"),
                   "--yes")

    assert done.returncode == 0, done.stderr
    assert "changes nothing" in done.stderr and not (job / "versions").exists()


def test_an_edit_that_breaks_a_rule_names_the_shot_and_keeps_the_job(job: Path) -> None:
    timeline = otio.adapters.read_from_file(str(job / "timeline.otio"))
    first = timeline.tracks[0][0]
    first.source_range = otio.opentime.TimeRange(first.source_range.start_time,
                                                 otio.opentime.RationalTime(5, 30))
    edited = job.parent / "too-short.otio"
    otio.adapters.write_to_file(timeline, str(edited))

    done = kantoku("edit", str(job), "--timeline", str(edited), "--yes")

    assert done.returncode == 2
    assert first.name in done.stderr and "shorter than 0.5 s" in done.stderr
    assert not (job / "versions").exists() and (job / "video.mp4").is_file()
