"""The main job: song + lyrics + brief → a beat-synced music video, driven through the CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc

from kantoku.services.video.encode import AVCOL_SPC_BT709
from tests.conftest import make_song
from tests.integration.test_assembly import loudness_of, subtitle_cues
from tests.integration.test_jobs import kantoku, server  # noqa: F401 - fixture
from tests.scripted_llm import answering, scripted_llm
from tests.unit.test_report import paths_in

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BRIEF = ROOT / "examples" / "brief.yaml"


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

    # Platform-ready: -14 LUFS, peaks under -1 dBTP, as the ledger says; BT.709 tagged; lyrics
    # burned in and not also a subtitle track; every file readable like any other.
    lufs, peak = loudness_of(out / "video.mp4")
    assert abs(lufs + 14) <= 1 and peak <= -1
    level = assemble_entry(out)["loudness"]
    assert (level["target_lufs"], level["ceiling_dbtp"]) == (-14, -1)
    assert level["after"]["integrated_lufs"] == pytest.approx(lufs, abs=0.05)
    assert level["after"]["true_peak_dbtp"] == pytest.approx(peak, abs=0.05)
    assert level["before"]["integrated_lufs"] < level["after"]["integrated_lufs"]
    for name in ("video.mp4", "shots/s001.mp4"):
        with av.open(str(out / name)) as container:
            video = container.streams.video[0]
            assert (video.color_primaries, video.color_trc, video.colorspace) == (
                ColorPrimaries.BT709, ColorTrc.BT709, AVCOL_SPC_BT709), name
            assert video.color_range == ColorRange.MPEG, name
            assert not container.streams.subtitles
    assert file_modes(out) == {open_mode(tmp_path)}


def file_modes(folder: Path) -> set[int]:
    """The permission bits of every file under `folder`."""
    return {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def open_mode(folder: Path) -> int:
    """The permission bits open() gives a new file (0666 less this process's umask)."""
    with open(folder / "opened.txt", "w") as handle:
        handle.write("x")
    return stat.S_IMODE((folder / "opened.txt").stat().st_mode)


def assemble_entry(out: Path) -> dict:
    entries = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    return next(e for e in entries if e["kind"] == "assemble")["data"]


def test_soft_lyrics_and_a_quieter_mix_survive_a_review_pause(server: str, song: Path,  # noqa: F811
                                                              tmp_path: Path) -> None:
    lyrics = tmp_path / "song.lrc"
    lyrics.write_text("[00:02.00]窓をあけて\n[00:02.00]Open the window\n[00:06.50]光の中へ\n",
                      encoding="utf-8")
    out = tmp_path / "out"
    paused = kantoku("mv", str(BRIEF), "--song", str(song),
                     "--lyrics", str(lyrics), "--out", str(out), "--server", server,
                     "--lyrics-mode", "soft", "--loudness", "-18")
    assert paused.returncode == 3, paused.stderr  # no terminal: waits for its review
    job = json.loads((out / "job.json").read_text())["job_id"]
    done = kantoku("resume", job, "--yes", "--server", server)
    assert done.returncode == 0, done.stderr

    codec, language, cues = subtitle_cues(out / "video.mp4")
    assert (codec, language) == ("mov_text", "jpn")
    assert cues == [(2.0, 6.5, "窓をあけて\nOpen the window"), (6.5, 12.5, "光の中へ")]
    lufs, peak = loudness_of(out / "video.mp4")
    assert abs(lufs + 18) <= 1 and peak <= -1
    entry = assemble_entry(out)
    assert entry["lyrics_mode"] == "soft" and entry["loudness"]["target_lufs"] == -18
    srt = (out / "lyrics.srt").read_text(encoding="utf-8")  # the sidecar is still there
    assert "00:00:02,000 --> 00:00:06,500" in srt


@pytest.mark.parametrize(("option", "value"), [("--loudness", "-40"),
                                               ("--lyrics-mode", "karaoke")])
def test_an_unusable_delivery_option_is_named(tmp_path: Path, option: str, value: str) -> None:
    done = kantoku("mv", str(BRIEF), "--out", str(tmp_path / "out"), option, value, "--yes")
    assert done.returncode == 2 and option in done.stderr
    assert not (tmp_path / "out").exists()


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


def test_the_llm_planner_fills_the_songs_beat_grid(song: Path, tmp_path: Path) -> None:
    from kantoku.planner.music.song import analyze_song

    places = ["apartment window at dawn", "empty shopping street", "railway crossing",
              "seaside promenade"]

    def idea(shot_id: str, position: int) -> dict[str, object]:
        number = int(shot_id[1:])
        who, place = ["Hana", "Sora"][number % 2], places[number % 4]
        return {"who": [who], "size": "medium", "move": ["pan_left", "static"][position % 2],
                "place": place, "show": f"{who} runs past the {place} in shot {shot_id}",
                "cut": True}

    out = tmp_path / "plan.json"
    with scripted_llm(answering(idea)) as llm:
        done = kantoku("plan", str(BRIEF), "--song", str(song), "--planner", "llm", "--out",
                       str(out), env=llm.env())
    assert done.returncode == 0, done.stderr
    plan = json.loads(out.read_text())
    assert plan["planner"] == "llm"
    assert all(shot["sources"]["description"] == "llm" for shot in plan["shots"])
    beats = np.array(analyze_song(song).beats_s)
    cuts = [shot["start_s"] for shot in plan["shots"][1:]]
    assert len(cuts) >= 3
    assert all(np.min(np.abs(beats - t)) <= 1 / 30 + 1e-6 for t in cuts)
    assert "plan: LLM planner scripted-1" in " ".join(done.stdout.split())
