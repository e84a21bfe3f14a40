"""The avatar's latency, stage by stage: how soon a person hears the character after they stop
talking, and how soon the character stops when they talk over it.

A real avatar server (in this process) on real gRPC services (`kantoku serve tts motion asr
--standalone`, another process) and a scripted OpenAI-compatible LLM that streams at a chosen
pace (default 4 characters every 20 ms, a fast server's speed), driven by the protocol client
the tests use. Speech is the project's TTS, sent at real-time pace in 32 ms frames.

1. Spoken turns (English, Joe; Japanese, Bell): medians of end of speech (the VAD's decision)
   → transcript → first token → first sentence → first audio → first viseme, and the steps.
2. Barge-in: the person speaks (or types) 1.5 s into a reply; from the frame holding the speech
   onset (or the typed message) to `interrupted` at the client, and the server's own stop_ms.

Run: .venv/bin/python bench/avatar.py [--turns 5] [--every-s 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KANTOKU_HOME", tempfile.mkdtemp(prefix="kantoku-bench-avatar-"))

from tests.avatar_client import AvatarClient  # noqa: E402
from tests.integration.test_avatar_protocol import (  # noqa: E402
    LONG_REPLY,
    running_avatar,
    speech,
)
from tests.integration.test_jobs import standalone_services  # noqa: E402
from tests.scripted_llm import Text, scripted_llm  # noqa: E402

STAGES = ("transcript", "first_token", "first_sentence", "first_audio", "first_viseme")
QUESTIONS = {"joe": ("en", "Could you tell me a short story about the sea?",
                     "Sure. Once upon a time, a small boat sailed out to sea. " * 2),
             "bell": ("ja", "海の短いお話をしてくれる？",
                      "いいよ。昔々、小さな船が海に出ました。波はとても静かでした。")}


def median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):7.0f}" if known else "      -"


async def spoken_turns(url: str, services: str, persona: str, turns: int) -> list[dict[str, Any]]:
    language, question, _ = QUESTIONS[persona]
    pcm, _ = await speech(services, question)
    found = []
    async with AvatarClient(url) as client:
        await client.start(persona, language)
        for turn in range(1, turns + 1):
            await client.stream_audio(pcm)
            metrics = await client.wait_for("turn_metrics", turn=turn, timeout=120)
            await client.wait_for("listening", after=client.events.index(metrics), timeout=120)
            found.append(metrics)
    return found


def onset_clock(onset_byte: int) -> tuple[list[float], Callable[[int, float], None]]:
    """A list that gets the send time of the frame holding byte `onset_byte`, and its hook."""
    sent: list[float] = []

    def on_frame(offset: int, at: float) -> None:
        if offset <= onset_byte < offset + 1024:
            sent.append(at)

    return sent, on_frame


async def barge_ins(url: str, services: str, turns: int) -> tuple[list[float], list[float],
                                                                   list[float]]:
    pcm, onset_ms = await speech(services, "Stop, please.", lead_ms=300)
    onset_byte = int(onset_ms * 16) * 2
    spoken, typed, server = [], [], []
    async with AvatarClient(url) as client:
        await client.start("joe", "en")
        turn = 0
        for _ in range(turns):
            turn += 1
            await client.say("Tell me about the rain.")
            await client.wait_for("audio", turn=turn, timeout=60)
            await asyncio.sleep(1.5)
            sent, on_frame = onset_clock(onset_byte)
            await client.stream_audio(pcm, on_frame=on_frame)
            cut = await client.wait_for("interrupted", turn=turn)
            metrics = await client.wait_for("turn_metrics", turn=turn)
            spoken.append((cut["_at"] - sent[0]) * 1000)
            server.append(metrics["stop_ms"])
            turn += 1  # the utterance's own reply
            await client.wait_for("audio", turn=turn, timeout=60)
            await asyncio.sleep(0.5)
            typed_at = await client.say("Stop.")
            cut = await client.wait_for("interrupted", turn=turn)
            typed.append((cut["_at"] - typed_at) * 1000)
            turn += 1
            await client.wait_for("reply_done", turn=turn, timeout=60)
    return spoken, typed, server


async def main(turns: int, every_s: float) -> None:
    replies = [Text(QUESTIONS[p][2], every_s=every_s) for p in QUESTIONS]
    ledger = Path(os.environ["KANTOKU_HOME"]) / "ledger.sqlite"
    with standalone_services("tts", "motion", "asr") as services, \
            scripted_llm(replies[0]) as llm, running_avatar(services, ledger) as (url, _):
        os.environ.update(llm.env())
        print(f"{'persona':8} {'turns':>5}  " + " ".join(f"{s[:7]:>7}" for s in STAGES)
              + "   asr_ms  llm_1st  tts_1st  vad_wait  (ms from the VAD's end of turn; medians)")
        for persona, reply in zip(QUESTIONS, replies, strict=True):
            llm.script = [reply]
            found = await spoken_turns(url, services, persona, turns)
            print(f"{persona:8} {turns:5}  "
                  + " ".join(median([m[f"speech_end_to_{s}_ms"] for m in found]) for s in STAGES)
                  + " " + " ".join(median([m[k] for m in found]) for k in
                                   ("asr_ms", "llm_first_token_ms", "tts_first_audio_ms",
                                    "end_of_turn_wait_ms")))
        llm.script = [Text(LONG_REPLY, every_s=every_s)]
        spoken, typed, server = await barge_ins(url, services, max(2, turns // 2))
        print(f"barge-in: speech onset -> interrupted at the client median {median(spoken)} ms "
              f"(VAD needs ~100 ms of speech); typed -> interrupted {median(typed)} ms; the "
              f"server's decision -> written {median(server)} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--every-s", type=float, default=0.02)
    options = parser.parse_args()
    asyncio.run(main(options.turns, options.every_s))
