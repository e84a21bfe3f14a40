"""The main job end to end: wall time over song duration for the embedded default.

For songs of 15, 30, 60 and 120 s (made by examples/make_song.py, with LRC lyrics every bar),
runs `kantoku mv --yes` at 720x1280 in a fresh KANTOKU_HOME (nothing cached), and prints the wall
time, the ratio to the song's duration (aim: <= 0.5 on 2 cores) and the time per stage, so the
slowest stage is visible. Cost should grow linearly with the song.
Run: .venv/bin/python bench/mv_e2e.py [--seconds 15 30 60 120]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KANTOKU = str(Path(sys.executable).with_name("kantoku"))


def song_maker():  # noqa: ANN201 - a module loaded from examples/
    spec = importlib.util.spec_from_file_location("make_song", ROOT / "examples" / "make_song.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lyrics(seconds: float) -> str:
    """One line per two bars at 120 BPM, from the first downbeat after the intro."""
    words = ["光の中へ 走り出そう", "Running through the city light", "窓をあけて 朝が来る",
             "Hold my hand, 夢の向こうへ"]
    return "\n".join(f"[{int(t // 60):02d}:{t % 60:05.2f}]{words[i % len(words)]}"
                     for i, t in enumerate(range(8, int(seconds) - 2, 4)))


def run(seconds: float, work: Path) -> dict:
    maker = song_maker()
    song, lrc, out = work / f"song{seconds:g}.wav", work / f"song{seconds:g}.lrc", work / "out"
    maker.write_wav(song, maker.synthesize(seconds))
    lrc.write_text(lyrics(seconds), encoding="utf-8")
    env = {**os.environ, "KANTOKU_HOME": str(work / "home")}
    started = time.perf_counter()
    done = subprocess.run([KANTOKU, "mv", str(ROOT / "examples" / "brief.yaml"), "--song",
                           str(song), "--lyrics", str(lrc), "--out", str(out), "--yes"],
                          env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"kantoku mv failed for {seconds:g} s:\n{done.stderr}")
    job = json.loads((out / "job.json").read_text())
    return {"seconds": seconds, "wall_s": wall, "stages": job["timings_s"],
            "shots": len(json.loads((out / "plan.json").read_text())["shots"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, nargs="+", default=[15, 30, 60, 120])
    args = parser.parse_args()
    rows = []
    for seconds in args.seconds:
        with tempfile.TemporaryDirectory(prefix="kantoku-mv-bench-") as work:
            rows.append(run(seconds, Path(work)))
        row = rows[-1]
        stages = "  ".join(f"{k} {v:.1f}" for k, v in row["stages"].items())
        print(f"song {seconds:5.0f} s  shots {row['shots']:3d}  wall {row['wall_s']:6.1f} s  "
              f"wall/song {row['wall_s'] / seconds:.2f}   stages (s): {stages}", flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = (last["wall_s"] / first["wall_s"]) / (last["seconds"] / first["seconds"])
        print(f"cost growth vs. linear from {first['seconds']:g} s to {last['seconds']:g} s: "
              f"{growth:.2f} (1.00 = linear)")


if __name__ == "__main__":
    main()
