"""The timeline round trip: export for every editor, then an edit that re-renders one shot.

Makes a music video from a song of --seconds (fresh KANTOKU_HOME, nothing cached: the
baseline), times `kantoku export` for each format, then edits the timeline (one clip trimmed,
one prompt changed, one clip removed) and times `kantoku edit --yes`. Prints each time and the
ratio of the edit to the full job: what a director saves by editing in the timeline instead of
making the video again.
Run: .venv/bin/python bench/timeline_edit.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import opentimelineio as otio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mv_e2e import KANTOKU, ROOT, lyrics, song_maker  # noqa: E402

FORMATS = ("fcp7", "fcpx", "aaf", "edl", "kdenlive")


def kantoku(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([KANTOKU, *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        raise SystemExit(f"kantoku {' '.join(args)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def edit_timeline(out: Path, edited: Path) -> None:
    timeline = otio.adapters.read_from_file(str(out / "timeline.otio"))
    track = timeline.tracks[0]
    trimmed = track[1].source_range
    track[1].source_range = otio.opentime.TimeRange(
        trimmed.start_time, otio.opentime.RationalTime(trimmed.duration.value - 10,
                                                       trimmed.duration.rate))
    track[2].metadata["kantoku"]["image_prompt"] = "a red umbrella alone in the rain"
    del track[3]
    otio.adapters.write_to_file(timeline, str(edited))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kantoku-edit-bench-") as folder:
        work = Path(folder)
        maker = song_maker()
        song, lrc, out = work / "song.wav", work / "song.lrc", work / "out"
        maker.write_wav(song, maker.synthesize(args.seconds))
        lrc.write_text(lyrics(args.seconds), encoding="utf-8")
        env = {**os.environ, "KANTOKU_HOME": str(work / "home")}
        full = kantoku(env, "mv", str(ROOT / "examples" / "brief.yaml"), "--song", str(song),
                       "--lyrics", str(lrc), "--out", str(out), "--yes")
        shots = len(json.loads((out / "plan.json").read_text())["shots"])
        print(f"full job: song {args.seconds:g} s, {shots} shots, {full:.1f} s (baseline)")
        for fmt in FORMATS:
            seconds = kantoku(env, "export", str(out), "--format", fmt)
            print(f"export {fmt:9s} {seconds:5.2f} s  ({seconds / full:.3f} of the full job)")
        edit_timeline(out, work / "edited.otio")
        edit = kantoku(env, "edit", str(out), "--timeline", str(work / "edited.otio"), "--yes")
        rendered = sum(1 for line in (out / "ledger.jsonl").read_text().splitlines()
                       if (e := json.loads(line))["kind"] in ("image", "video", "tts", "motion")
                       and not e["cache_hit"])
        print(f"edit (trim, prompt, remove): {edit:.1f} s, {rendered} render steps; "
              f"edit / full job = {edit / full:.2f}")


if __name__ == "__main__":
    main()
