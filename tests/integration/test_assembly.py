"""Final assembly: frame-accurate concatenation, the mixed soundtrack, the timeline, storyboard."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest
import soundfile
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc
from PIL import Image
from scipy.signal import resample_poly

from kantoku.planner.finish.assemble import ClipInput, DialogueInput, assemble_video
from kantoku.planner.finish.loudness import LoudnessTarget
from kantoku.planner.finish.storyboard import StoryboardFrame, make_storyboard, storyboard_layout
from kantoku.planner.finish.subtitle_track import SubtitleTrack
from kantoku.planner.finish.subtitles import SubtitleBurner
from kantoku.planner.finish.timeline import TimelineShot, read_timeline, write_timeline
from kantoku.planner.music.lyrics import LyricLine
from kantoku.planner.planning.plan import Plan, Shot
from kantoku.services._core.errors import KantokuError
from kantoku.services.video.encode import AVCOL_SPC_BT709, encode_mp4
from tests.conftest import make_song

pytestmark = pytest.mark.integration

FPS, WIDTH, HEIGHT = 30, 72, 128
COLOURS = [(230, 30, 30), (30, 200, 40), (40, 40, 220)]
LENGTHS = [10, 7, 13]
AAC_FRAME_S = 1024 / 48_000


def _solid_clip(path: Path, colour: tuple[int, int, int], frames: int, width: int = WIDTH,
                height: int = HEIGHT) -> Path:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = colour
    data, _ = encode_mp4([image] * frames, FPS, width, height)
    path.write_bytes(data)
    return path


def _sine(path: Path, seconds: float, hz: float, rate: int, amplitude: float,
          channels: int) -> Path:
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * np.sin(2 * np.pi * hz * t)
    soundfile.write(path, np.stack([wave] * channels, axis=1), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    for index, (colour, frames) in enumerate(zip(COLOURS, LENGTHS, strict=True)):
        _solid_clip(folder / f"s00{index + 1}.mp4", colour, frames)
    _sine(folder / "song.wav", 1.5, 440, 44_100, 0.9, 2)
    _sine(folder / "line.wav", 0.5, 880, 22_050, 0.9, 1)
    return folder


def _clips(media: Path) -> list[ClipInput]:
    return [ClipInput(media / f"s00{i + 1}.mp4", n, f"s00{i + 1}") for i, n in enumerate(LENGTHS)]


def _decode(path: Path) -> tuple[list[np.ndarray], tuple[object, ...], float, float]:
    """RGB frames, the video's (rate, width, height, codec, pix_fmt), the AAC stream's duration
    and its decoded peak."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (audio.codec_context.name, audio.rate, audio.channels) == ("aac", 48_000, 2)
        audio_s = float(audio.duration * audio.time_base)
        info = (video.average_rate, video.width, video.height, video.codec_context.name,
                video.pix_fmt)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
    with av.open(str(path)) as container:
        peak = max(float(np.abs(f.to_ndarray()).max()) for f in container.decode(audio=0))
    return frames, info, audio_s, peak


def _close(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: float = 12) -> bool:
    return bool(np.all(np.abs(pixel - np.array(colour)) < tolerance))


def _atom_offsets(path: Path) -> dict[str, int]:
    """Byte offsets of the top-level MP4 boxes."""
    data, offsets, position = path.read_bytes(), {}, 0
    while position + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[position:position + 8])
        if size == 1:
            size = struct.unpack(">Q", data[position + 8:position + 16])[0]
        offsets.setdefault(kind.decode("latin-1"), position)
        position += size if size else len(data)
    return offsets


def test_concatenates_frame_accurately_with_song_and_dialogue(media: Path,
                                                              tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    hooked: list[int] = []

    def hook(index: int, rgb: np.ndarray) -> np.ndarray:
        hooked.append(index)
        if index == 29:
            rgb = rgb.copy()
            rgb[:8] = 255
        return rgb

    out = tmp_path / "final.mp4"
    report = assemble_video(_clips(media), fps=FPS, width_px=WIDTH, height_px=HEIGHT, out=out,
                            song=media / "song.wav",
                            dialogue=[DialogueInput(media / "line.wav", 0.2),
                                      DialogueInput(media / "line.wav", 0.8)],
                            frame_hook=hook, loudness=None,
                            on_progress=lambda d, t: progress.append((d, t)))

    assert (report.frames, report.duration_s, report.path) == (30, 1.0, out)
    assert len(report.sha256) == 64
    frames, video, audio_s, peak = _decode(out)
    assert len(frames) == 30
    assert video == (FPS, WIDTH, HEIGHT, "h264", "yuv420p")
    start = 0
    for colour, length in zip(COLOURS, LENGTHS, strict=True):
        for index in (start, start + length - 1):
            assert _close(frames[index][40:].reshape(-1, 3).mean(axis=0), colour), index
        start += length
    assert frames[29][:8].mean() > 240 and frames[28][:8].mean() < 200
    assert hooked == list(range(30))
    assert progress == [(30, 30)]
    assert abs(audio_s - 1.0) <= AAC_FRAME_S
    assert peak <= 1.02
    offsets = _atom_offsets(out)
    assert offsets["moov"] < offsets["mdat"]
    assert any("song song.wav: trimmed" in note for note in report.notes)
    assert any("line.wav at 0.800 s: trimmed" in note for note in report.notes)
    assert any("limited" in note for note in report.notes)
    assert not [p for p in tmp_path.iterdir() if p.name != "final.mp4"]


def test_scales_holds_and_drops_with_notes(media: Path, tmp_path: Path) -> None:
    square = _solid_clip(tmp_path / "square.mp4", (30, 200, 40), 4, 64, 64)
    long = _solid_clip(tmp_path / "long.mp4", (230, 30, 30), 9)
    clips = [ClipInput(square, 6, "s001"), ClipInput(long, 5, "s002")]
    out = tmp_path / "out.mp4"

    report = assemble_video(clips, fps=FPS, width_px=WIDTH, height_px=HEIGHT, out=out,
                            song=media / "song.wav")

    frames, _, audio_s, _ = _decode(out)
    assert len(frames) == report.frames == 11
    assert abs(audio_s - 11 / FPS) <= AAC_FRAME_S
    for index in (0, 3, 5):  # 64x64 scaled to 72x72, black bars of 28 px above and below
        assert _close(frames[index][64], (30, 200, 40))
        assert frames[index][:24].max() < 20 and frames[index][-24:].max() < 20
    assert _close(frames[10][64], (230, 30, 30))
    notes = "\n".join(report.notes)
    assert "s001: the clip is 64x64; scaled to 72x72 and letterboxed" in notes
    assert "s001: the clip has 4 frames but the shot needs 6; held its last frame" in notes
    assert "s002: the clip has 9 frames but the shot needs 5; dropped the rest" in notes


def test_silence_without_song(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "quiet.mp4"
    report = assemble_video(_clips(media)[:1], fps=FPS, width_px=WIDTH, height_px=HEIGHT,
                            out=out)
    _, _, audio_s, peak = _decode(out)
    assert report.frames == 10 and report.notes == []
    assert abs(audio_s - 10 / FPS) <= AAC_FRAME_S and peak < 1e-3


def test_missing_clip_fails_and_writes_nothing(media: Path, tmp_path: Path) -> None:
    clips = [*_clips(media)[:2], ClipInput(tmp_path / "nowhere" / "s003.mp4", 13, "s003")]
    out = tmp_path / "final.mp4"
    with pytest.raises(KantokuError) as error:
        assemble_video(clips, fps=FPS, width_px=WIDTH, height_px=HEIGHT, out=out)
    assert "s003.mp4" in str(error.value) and "s003" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_clip_fails_midway_and_writes_nothing(media: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(1).bytes(4096))
    out = tmp_path / "final.mp4"
    with pytest.raises(KantokuError) as error:
        assemble_video([*_clips(media)[:1], ClipInput(broken, 5, "s002")], fps=FPS,
                       width_px=WIDTH, height_px=HEIGHT, out=out)
    assert "broken.mp4" in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ["broken.mp4"]


def test_corrupt_song_names_the_file(media: Path, tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(np.random.default_rng(0).bytes(20_000))
    out = tmp_path / "final.mp4"
    with pytest.raises(KantokuError) as error:
        assemble_video(_clips(media), fps=FPS, width_px=WIDTH, height_px=HEIGHT, out=out,
                       song=song)
    assert "song.wav" in str(error.value) and error.value.reason == "AUDIO_INVALID"
    assert not out.exists()


def loudness_of(path: Path) -> tuple[float, float]:
    """(integrated LUFS by pyloudnorm, true peak in dBTP at 4x) of a file's first audio stream."""
    with av.open(str(path)) as container:
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    peak = np.abs(resample_poly(audio.astype(np.float64), 4, 1, axis=1)).max()
    rate = 48_000
    return (pyloudnorm.Meter(rate).integrated_loudness(audio.T.astype(np.float64)),
            20 * float(np.log10(peak)))


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_song(tmp_path_factory.mktemp("song") / "song8.wav", 8)


@pytest.mark.parametrize("target", [None, -18.0])
def test_the_soundtrack_is_normalised_for_the_platforms(media: Path, song: Path, tmp_path: Path,
                                                        target: float | None) -> None:
    clips = [ClipInput(media / f"s00{i + 1}.mp4", 80, f"s00{i + 1}") for i in range(3)]
    song_bytes = song.read_bytes()
    samples, rate = soundfile.read(song, dtype="float64")
    song_lufs = pyloudnorm.Meter(rate).integrated_loudness(samples)
    out = tmp_path / "loud.mp4"

    report = assemble_video(clips, fps=FPS, width_px=WIDTH, height_px=HEIGHT, out=out, song=song,
                            **({} if target is None else {"loudness": LoudnessTarget(target)}))

    lufs, peak = loudness_of(out)
    expected = -14.0 if target is None else target
    assert abs(lufs - expected) <= 1.0 and peak <= -1.0
    assert report.loudness is not None
    assert report.loudness.target.integrated_lufs == expected
    assert report.loudness.after.integrated_lufs == pytest.approx(lufs, abs=0.05)
    assert report.loudness.after.true_peak_dbtp == pytest.approx(peak, abs=0.05)
    assert report.loudness.before.integrated_lufs == pytest.approx(song_lufs, abs=0.1)
    assert any("normalised to" in note for note in report.notes)
    assert song.read_bytes() == song_bytes


def test_clips_in_other_colours_come_out_bt709_and_tagged(tmp_path: Path) -> None:
    colour = (220, 40, 30)
    untagged = tmp_path / "bt601.mp4"  # PyAV's defaults: BT.601 pixels, no tags
    with av.open(str(untagged), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((HEIGHT, WIDTH, 3), colour, np.uint8),
                                               format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    out = tmp_path / "final.mp4"

    assemble_video([ClipInput(untagged, 5, "s001")], fps=FPS, width_px=WIDTH, height_px=HEIGHT,
                   out=out)

    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.color_primaries, video.color_trc, video.colorspace, video.color_range) == (
            ColorPrimaries.BT709, ColorTrc.BT709, AVCOL_SPC_BT709, ColorRange.MPEG)
        frame = next(container.decode(video))
        rgb = frame.to_ndarray(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")
    assert _close(rgb[32:96].reshape(-1, 3).mean(axis=0), colour, tolerance=4)


LYRICS = [LyricLine(0.2, 0.6, "窓をあけて\nOpen the window"), LyricLine(0.6, 2.0, "光の中へ")]


def subtitle_cues(path: Path) -> tuple[str, str, list[tuple[float, float, str]]]:
    """The subtitle stream's codec, language and (start, end, text) of every cue."""
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        cues = []
        for packet in container.demux(stream):
            data = bytes(packet)
            length = int.from_bytes(data[:2], "big") if len(data) >= 2 else 0
            if length and packet.pts is not None and packet.duration:
                start = float(packet.pts * packet.time_base)
                cues.append((round(start, 3), round(start + float(packet.duration
                                                                  * packet.time_base), 3),
                             data[2:2 + length].decode()))
        return stream.codec_context.name, stream.metadata.get("language", ""), cues


def test_soft_lyrics_are_a_subtitle_track_over_a_clean_picture(media: Path,
                                                                tmp_path: Path) -> None:
    plain, soft, burned = tmp_path / "plain.mp4", tmp_path / "soft.mp4", tmp_path / "burn.mp4"
    arguments = {"fps": FPS, "width_px": WIDTH, "height_px": HEIGHT}
    assemble_video(_clips(media), out=plain, **arguments)  # type: ignore[arg-type]
    assemble_video(_clips(media), out=soft, subtitles=SubtitleTrack(LYRICS, "ja"),
                   **arguments)  # type: ignore[arg-type]
    assemble_video(_clips(media), out=burned, frame_hook=SubtitleBurner(LYRICS, **arguments),
                   **arguments)  # type: ignore[arg-type]

    codec, language, cues = subtitle_cues(soft)
    assert (codec, language) == ("mov_text", "jpn")
    # The second line runs past the 1 s video and is cut at its end.
    assert cues == [(0.2, 0.6, "窓をあけて\nOpen the window"), (0.6, 1.0, "光の中へ")]
    clean, soft_frames, burned_frames = (_decode(path)[0] for path in (plain, soft, burned))
    for index in (6, 20):  # lines showing
        assert np.abs(soft_frames[index].astype(int) - clean[index]).max() <= 2
        assert np.abs(burned_frames[index].astype(int) - clean[index]).max() > 60
    with av.open(str(burned)) as container:
        assert not container.streams.subtitles


def _plan() -> Plan:
    bounds = np.cumsum([0, *LENGTHS]) / FPS
    shots = [Shot(id=f"s00{i + 1}", start_s=float(bounds[i]), end_s=float(bounds[i + 1]),
                  description=f"shot {i + 1}") for i in range(3)]
    return Plan(title="Test", duration_s=1.0, width_px=WIDTH, height_px=HEIGHT, fps=FPS,
                shots=shots)


def test_timeline_round_trip(media: Path, tmp_path: Path) -> None:
    plan = _plan()
    shots = [TimelineShot(f"s00{i + 1}", media / f"s00{i + 1}.mp4", f"{i}" * 64,
                          [f"step-{i}", "plan"]) for i in reversed(range(3))]
    out = tmp_path / "job" / "timeline.otio"

    write_timeline(plan, shots, out, song=media / "song.wav", video=tmp_path / "job" / "v.mp4")

    timeline = read_timeline(out)
    assert timeline.name == "Test" and timeline.metadata["kantoku"]["video"] == "v.mp4"
    track, song_track = timeline.tracks
    assert (track.name, track.kind, song_track.kind) == ("shots", "Video", "Audio")
    assert [clip.name for clip in track] == ["s001", "s002", "s003"]
    for index, (clip, frames) in enumerate(zip(track, LENGTHS, strict=True)):
        assert clip.source_range.start_time.value == 0
        assert clip.source_range.duration.value == frames
        assert clip.source_range.duration.rate == FPS
        url = clip.media_reference.target_url
        assert not Path(url).is_absolute() and ":" not in url
        assert (out.parent / url).resolve() == (media / f"s00{index + 1}.mp4").resolve()
        metadata = clip.metadata["kantoku"]
        assert (metadata["shot_id"], metadata["description"]) == (clip.name, f"shot {index + 1}")
        assert list(metadata["provenance_ids"]) == [f"step-{index}", "plan"]
        assert metadata["sha256"] == f"{index}" * 64
    assert track.duration().to_frames() == 30
    assert song_track[0].source_range.duration.to_frames() == 30
    with pytest.raises(KantokuError, match="s003"):
        write_timeline(plan, shots[1:], tmp_path / "bad.otio")


def test_storyboard_size(tmp_path: Path) -> None:
    frames = []
    for index in range(5):
        image = tmp_path / f"k{index}.png"
        Image.new("RGB", (WIDTH, HEIGHT), COLOURS[index % 3]).save(image)
        frames.append(StoryboardFrame(f"s00{index + 1}", index * 2.5, index * 2.5 + 2.5, image,
                                      "Aoi sings on a rooftop at night " * 4))
    sheet = tmp_path / "storyboard.png"

    make_storyboard(frames, sheet, title="Test", columns=4, thumb_width=120)

    layout = storyboard_layout(5, columns=4, thumb_width=120, thumb_height=213)
    with Image.open(sheet) as image:
        assert image.size == layout.size
        left, top = layout.origin(4)
        assert _close(np.array(image.getpixel((left + 60, top + 100))), COLOURS[1])
    four = storyboard_layout(4, columns=4, thumb_width=120, thumb_height=213)
    assert four.size[0] == layout.size[0] and four.size[1] < layout.size[1]
