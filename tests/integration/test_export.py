"""The timeline where editors pick it up: timeline.otio converted by the public OTIO adapters for
FCP 7 XML, FCPX XML, AAF, CMX 3600 EDL and Kdenlive, read back with the same adapters."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import opentimelineio as otio
import pytest

from tests.conftest import make_song
from tests.integration.test_jobs import brief, kantoku, server  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SUFFIX = {"fcp7": ".xml", "fcpx": ".fcpxml", "aaf": ".aaf", "kdenlive": ".kdenlive"}
LYRICS = "[00:01.00]窓をあけて\n[00:03.00]Running through the light\n"


@pytest.fixture(scope="module")
def music_video(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("mv")
    song = make_song(folder / "my song.wav", 6)
    lyrics = folder / "song.lrc"
    lyrics.write_text(LYRICS, encoding="utf-8")
    out = folder / "out"
    done = kantoku("mv", str(ROOT / "examples" / "brief.yaml"), "--song", str(song),
                   "--lyrics", str(lyrics), "--out", str(out), "--yes", "--server", server)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def dialogue_job(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("dialogue")
    path = brief(folder, duration_s=12, characters=[
        {"name": "Aki", "description": "red jacket"}, {"name": "Ren", "description": "hoodie"}],
        dialogue=[{"speaker": "Ren", "text": "Come on!"}, {"speaker": "Aki", "text": "Wait!"}])
    out = folder / "out"
    done = kantoku("mv", str(path), "--out", str(out), "--yes", "--server", server)
    assert done.returncode == 0, done.stderr
    return out


def plan_of(out: Path) -> dict:
    return json.loads((out / "plan.json").read_text())


def read_back(path: Path, adapter: str, **options: object) -> otio.schema.Timeline:
    with contextlib.redirect_stdout(io.StringIO()):  # the Kdenlive adapter's banner
        return otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)


def frame_size(path: Path, fmt: str, timeline: otio.schema.Timeline) -> tuple[int, int]:
    """The project's frame size where each editor's format keeps it."""
    if fmt == "fcp7":
        sample = timeline.metadata["fcp_xml"]["media"]["video"]["format"]["samplecharacteristics"]
        return int(sample["width"]), int(sample["height"])
    if fmt == "fcpx":
        element = next(ET.parse(path).getroot().iter("format"))
        return int(element.get("width", 0)), int(element.get("height", 0))
    if fmt == "aaf":
        essence = timeline.find_clips()[0].media_reference.metadata["AAF"]["EssenceDescription"]
        return int(essence["StoredWidth"]), int(essence["StoredHeight"])
    profile = next(ET.parse(path).getroot().iter("profile"))
    return int(profile.get("width", 0)), int(profile.get("height", 0))


@pytest.mark.parametrize(("fmt", "adapter"), [("fcp7", "fcp_xml"), ("fcpx", "fcpx_xml"),
                                              ("aaf", "AAF"), ("kdenlive", "kdenlive")])
def test_editors_read_a_vertical_project_with_every_shot_and_the_song(
        music_video: Path, fmt: str, adapter: str) -> None:
    plan = plan_of(music_video)

    done = kantoku("export", str(music_video), "--format", fmt)

    assert done.returncode == 0, done.stderr
    path = music_video / "export" / f"timeline{SUFFIX[fmt]}"
    timeline = read_back(path, adapter)
    video = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    audio = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert sum(len(t.find_clips()) for t in video) == len(plan["shots"])
    assert audio and audio[0].find_clips(), "no audio track: the project would be silent"
    assert timeline.duration().to_seconds() == pytest.approx(plan["duration_s"], abs=0.05)
    assert frame_size(path, fmt, timeline) == (720, 1280)


def test_the_edl_has_the_picture_and_the_song_each_in_its_own_file(music_video: Path) -> None:
    done = kantoku("export", str(music_video), "--format", "edl")
    assert done.returncode == 0, done.stderr

    picture = read_back(music_video / "export" / "timeline.edl", "cmx_3600", rate=30)
    sound = read_back(music_video / "export" / "timeline.A1.edl", "cmx_3600", rate=30)
    assert len(picture.find_clips()) == len(plan_of(music_video)["shots"])
    assert [t.kind for t in sound.tracks] == [otio.schema.TrackKind.Audio]
    assert "song.wav" in (music_video / "export" / "timeline.A1.edl").read_text()


def test_the_timeline_carries_ranges_frame_size_song_and_lyrics(music_video: Path) -> None:
    timeline = read_back(music_video / "timeline.otio", "otio_json")

    for clip in timeline.find_clips():
        reference = clip.media_reference
        assert reference.available_range is not None, clip.name
        assert reference.available_range.duration >= clip.source_range.duration
    bounds = timeline.tracks[0].find_clips()[0].media_reference.available_image_bounds
    assert bounds is not None
    assert (bounds.max.x - bounds.min.x) / (bounds.max.y - bounds.min.y) == pytest.approx(9 / 16)
    song = timeline.tracks[1].find_clips()[0]
    assert song.media_reference.target_url == "song.wav"  # inside the job folder
    assert [m.name for m in timeline.tracks.markers] == ["窓をあけて", "Running through the light"]
    assert timeline.tracks.markers[0].marked_range.start_time.to_seconds() == pytest.approx(1.0)


def test_dialogue_lines_are_on_the_timeline_and_in_the_exports(dialogue_job: Path) -> None:
    timeline = read_back(dialogue_job / "timeline.otio", "otio_json")
    lines = [clip for track in timeline.tracks if track.name.startswith("dialogue")
             for clip in track.find_clips()]

    assert [c.metadata["kantoku"]["text"] for c in lines] == ["Come on!", "Wait!"]
    for clip in lines:
        start = clip.range_in_parent().start_time.to_seconds()
        assert start == pytest.approx(clip.metadata["kantoku"]["start_s"], abs=1 / 30)
        assert (dialogue_job / clip.media_reference.target_url).is_file()
    done = kantoku("export", str(dialogue_job), "--format", "fcp7")
    assert done.returncode == 0, done.stderr
    project = read_back(dialogue_job / "export" / "timeline.xml", "fcp_xml")
    audio = [t for t in project.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert sum(len(t.find_clips()) for t in audio) == 2


def test_a_moved_job_folder_still_resolves_every_media_reference(music_video: Path,
                                                                  tmp_path: Path) -> None:
    moved = tmp_path / "handed to the editor"
    shutil.copytree(music_video, moved)

    timeline = read_back(moved / "timeline.otio", "otio_json")
    urls = [clip.media_reference.target_url for clip in timeline.find_clips()]
    assert urls and all((moved / url).is_file() for url in urls)
    done = kantoku("export", str(moved), "--format", "fcp7")
    assert done.returncode == 0, done.stderr
    project = read_back(moved / "export" / "timeline.xml", "fcp_xml")
    for clip in project.find_clips():
        path = Path(unquote(clip.media_reference.target_url.removeprefix("file://")))
        assert path.is_file() and moved.resolve() in path.resolve().parents


def test_export_names_a_missing_clip_and_an_unknown_format(music_video: Path,
                                                           tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(music_video, broken)
    (broken / "shots" / "s002.mp4").unlink()

    missing = kantoku("export", str(broken), "--format", "fcpx")
    unknown = kantoku("export", str(broken), "--format", "premiere")

    assert missing.returncode == 3 and "s002.mp4" in missing.stderr
    assert unknown.returncode == 2 and "--format" in unknown.stderr
