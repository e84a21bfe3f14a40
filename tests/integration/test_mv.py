"""The main job: song + lyrics + brief → a beat-synced music video, driven through the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from tests.integration.test_jobs import kantoku, scripted_llm, server  # noqa: F401 - fixture
from tests.unit.test_report import paths_in

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BRIEF = ROOT / "examples" / "brief.yaml"


def make_song(path: Path, seconds: float) -> Path:
    spec = importlib.util.spec_from_file_location("make_song", ROOT / "examples" / "make_song.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_wav(path, module.synthesize(seconds))
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_song(tmp_path_factory.mktemp("song") / "song15.wav", 15)


def brief_with(tmp_path: Path, **changes: object) -> Path:
    import yaml

    document = {**yaml.safe_load(BRIEF.read_text()), **changes}
    path = tmp_path / "brief.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def test_a_music_video_cuts_on_beats_shows_the_lyrics_and_keeps_the_song(
        server: str, song: Path, tmp_path: Path) -> None:  # noqa: F811
    from kantoku.planner.music.song import analyze_song

    lyrics = tmp_path / "song.lrc"
    lyrics.write_text("[ti:test]\n[00:04.00]窓をあけて 朝が来る\n"
                      "[00:08.00]Running through the light\n"
                      "[00:10.00][00:12.00]光の中へ\n[00:40.00]after the end\n", encoding="utf-8")
    out = tmp_path / "out"
    done = kantoku("mv", str(brief_with(tmp_path, duration_s=20)), "--song", str(song),
                   "--lyrics", str(lyrics), "--out", str(out), "--yes", "--server", server)
    assert done.returncode == 0, done.stderr

    samples, rate = soundfile.read(song, dtype="float32")
    with av.open(str(out / "video.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (720, 1280)
        assert sum(1 for _ in container.decode(video=0)) == 15 * 30
    with av.open(str(out / "video.mp4")) as container:
        audio = np.concatenate([f.to_ndarray().reshape(-1) if f.format.is_planar is False else
                                f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert abs(len(audio) / 48000 - len(samples) / rate) < 1024 / 48000 * 2  # within an AAC frame

    plan = json.loads((out / "plan.json").read_text())
    beats = np.array(analyze_song(song).beats_s)
    cuts = [shot["start_s"] for shot in plan["shots"][1:]]
    assert cuts and all(np.min(np.abs(beats - t)) <= 1 / 30 + 1e-6 for t in cuts)
    notes = " ".join(plan["notes"])
    assert "the song wins" in notes and "song.lrc line 5" in notes  # the stamp past the end
    assert any("光の中へ" in shot["lyrics"] for shot in plan["shots"])

    srt = (out / "lyrics.srt").read_text(encoding="utf-8")
    assert "00:00:04,000 --> " in srt and "窓をあけて" in srt and "after the end" not in srt
    assert (out / "lyrics.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    rights = json.loads((out / "rights.json").read_text())
    assert "kantoku project" in json.dumps(rights["attribution"]["soundtrack"], ensure_ascii=False)
    soundtrack = rights["attribution"]["soundtrack"][0]
    assert (soundtrack["file"], soundtrack["sha256"]) == (song.name, analyze_song(song).sha256)
    assert rights["contributors"] and rights["date"]
    job = json.loads((out / "job.json").read_text())
    for document in (rights, job):  # files handed on name no path of this machine
        assert paths_in(document, tmp_path, song.parent) == []
    html = (out / "rights.html").read_text(encoding="utf-8")
    assert html.index('id="contributors"') < html.index('id="assets"')
    assert str(tmp_path) not in html and str(song.parent) not in html
    song_entries = [e for e in (json.loads(line) for line in
                                (out / "ledger.jsonl").read_text().splitlines())
                    if e["kind"] == "song"]
    assert song_entries and song_entries[0]["data"]["sha256"] == analyze_song(song).sha256
    assert (out / "timeline.png").is_file()
    assert kantoku("rights", "verify", str(out)).returncode == 0


@pytest.mark.parametrize(("content", "expected"), [
    (b"RIFF\x00\x00garbage" * 100, "cannot decode"),
    (None, "silent"),
])
def test_a_bad_song_stops_the_job_with_the_file_named(server: str, tmp_path: Path,  # noqa: F811
                                                       content: bytes | None,
                                                       expected: str) -> None:
    path = tmp_path / "bad.wav"
    if content is None:
        soundfile.write(path, np.zeros(44100 * 5, dtype=np.float32), 44100)
    else:
        path.write_bytes(content)
    done = kantoku("mv", str(BRIEF), "--song", str(path), "--out", str(tmp_path / "out"),
                   "--yes", "--server", server)
    assert done.returncode == 2
    assert "bad.wav" in done.stderr and expected in done.stderr


def test_lyrics_without_timestamps_are_spread_over_the_loud_sections(
        server: str, song: Path, tmp_path: Path) -> None:  # noqa: F811
    lyrics = tmp_path / "plain.txt"
    lyrics.write_text("窓をあけて 朝が来る\nRunning through the light\n光の中へ\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    done = kantoku("mv", str(BRIEF), "--song", str(song), "--lyrics", str(lyrics), "--out",
                   str(out), "--yes", "--server", server, "--resolution", "480p")
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert (plan["width_px"], plan["height_px"]) == (480, 854)
    assert any("no timestamps" in note for note in plan["notes"])
    assert (out / "lyrics.srt").read_text(encoding="utf-8").count("-->") == 3


def test_the_llm_planners_cuts_are_snapped_to_the_beat(song: Path, tmp_path: Path) -> None:
    from kantoku.planner.music.song import analyze_song

    proposal = {"shots": [
        {"start_s": 0, "end_s": 3.1, "section": "intro", "description": "dawn over the city",
         "shot_size": "extreme_wide", "characters": []},
        {"start_s": 3.1, "end_s": 7.3, "description": "Hana runs", "shot_size": "full",
         "characters": ["Hana"], "camera_move": "truck_left"},
        {"start_s": 7.3, "end_s": 11.8, "description": "Sora waits", "shot_size": "medium",
         "characters": ["Sora"]},
        {"start_s": 11.8, "end_s": 15, "description": "they meet", "shot_size": "wide",
         "characters": ["Hana", "Sora"]}]}
    out = tmp_path / "plan.json"
    with scripted_llm(json.dumps(proposal)) as env:
        done = kantoku("plan", str(BRIEF), "--song", str(song), "--planner", "llm", "--out",
                       str(out), env=env)
    assert done.returncode == 0, done.stderr
    plan = json.loads(out.read_text())
    assert plan["planner"] == "llm" and len(plan["shots"]) == 4
    beats = np.array(analyze_song(song).beats_s)
    cuts = [shot["start_s"] for shot in plan["shots"][1:]]
    assert all(np.min(np.abs(beats - t)) <= 1 / 30 + 1e-6 for t in cuts)
    assert cuts != [3.1, 7.3, 11.8]  # the proposal was off the beat
