"""`kantoku demo`: speech and motion through real gRPC servers, files a person can open."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from kantoku.agents.avatar.motion_sheet import render
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.server import ServiceBinding, start_server
from kantoku.services._core.settings import core_settings
from kantoku.services.catalog import SERVICES
from kantoku.services.motion.client import load_timings, motion_document
from kantoku.services.tts.client import synthesize, write_speech
from kantoku.v1 import motion_pb2, tts_pb2

LINES = [
    ("hello_en", "Welcome to kantoku. Every frame we make carries a signed record of who made it."),
    ("hello_ja", "こんにちは。監督へようこそ。今日は新しいミュージックビデオを作りましょう。"),
]


async def run_demo(out: Path, console: Console, progress_factory: Callable[[], Progress]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with progress_factory() as progress:
        task = progress.add_task("loading voices and starting gRPC servers", total=None)
        bindings = [ServiceBinding(s.build(), s.add_function(), s.full_name)
                    for s in SERVICES.values()]
        server = await start_server(bindings, port=0)
        progress.update(task, total=len(LINES) * 2, completed=0)
        rows = []
        try:
            async with ServiceClient(server.address, core_settings().token) as client:
                for name, text in LINES:
                    progress.update(task, description=f"speaking {name}")
                    speech = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(text=text))
                    wav = out / f"{name}.wav"
                    write_speech(speech, text, wav)
                    progress.advance(task)
                    progress.update(task, description=f"animating {name}")
                    track, inputs = load_timings(wav.with_name(wav.name + ".json"))
                    motion = await client.animate(motion_pb2.AnimateSpeechRequest(
                        phonemes=track, fps=30, inputs=inputs))
                    (out / f"{name}.motion.json").write_text(
                        json.dumps(motion_document(motion), indent=1, ensure_ascii=False))
                    render(speech.wav, speech.timings_document(text)["words"], motion,
                           f"{name}: {speech.header.voice_id}, {speech.duration_s:.2f} s",
                           out / f"{name}.motion.png")
                    progress.advance(task)
                    rows.append((name, speech, motion))
        finally:
            await server.stop()
    table = Table("take", "voice", "audio (s)", "words", "viseme frames", "gestures", "license")
    for name, speech, motion in rows:
        table.add_row(name, speech.header.voice_id, f"{speech.duration_s:.2f}",
                      str(sum(len(c.words) for c in speech.chunks)),
                      str(len(motion.visemes.frames)), str(len(motion.gestures.keyframes)),
                      speech.provenance.model.rights.license)
    console.print(table)
    console.print(f"wrote {out}/: *.wav (listen), *.wav.json (timings + provenance), "
                  "*.motion.json (visemes + gestures), *.motion.png (look)")
