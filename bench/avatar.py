"""The avatar's latency, stage by stage: how soon a person hears the character after they stop
talking, and how soon the character stops when they talk over it.

The product as a user runs it: `kantoku serve tts motion asr --standalone` and `kantoku avatar
--server` (two processes), on the embedded models unless OPENAI_BASE_URL names another LLM, driven
over the WebSocket by kantoku.agents.avatar.client. The person's lines are the project's own TTS
(Piper), sent as 16 kHz PCM16 in 20 ms frames at real-time pace, like the page's microphone.

A conversation of N spoken turns where each question talks over the answer to the one before,
about a second into its audio (as people do): every turn gives its latencies, every turn after
the first a barge-in.

- end of speech: the last voiced sample of the question left the client. The server's own
  metrics start later, at the VAD's end-of-turn decision (after `end_of_turn_ms` of silence);
  both are printed.
- speculative turns start at 200 ms of silence and are held until the decision, so the
  server's figures from the decision can be small (0 when a mark was reached before it).
- barge-in: from the frame holding the first voiced sample of the next question to the
  `interrupted` event at the client (the VAD needs 64 ms of speech to call it speech).

Run: .venv/bin/python bench/avatar.py [--turns 20] [--persona joe]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KANTOKU_HOME", tempfile.mkdtemp(prefix="kantoku-bench-avatar-"))

from kantoku.agents.avatar.client import AvatarClient  # noqa: E402
from kantoku.services._core.client import ServiceClient  # noqa: E402
from kantoku.services._core.server import free_port  # noqa: E402
from kantoku.services.tts.client import synthesize  # noqa: E402
from kantoku.v1 import tts_pb2  # noqa: E402

KANTOKU = str(Path(sys.executable).with_name("kantoku"))
RATE_HZ = 16000
FRAME_MS = 20
QUESTIONS = {
    "en": ["What is your favourite movie?", "Can you tell me a joke?",
           "What did you do today?", "Where would you like to travel?",
           "What music do you like?", "How do you make a cup of tea?",
           "What is the weather like?", "Tell me about your friends."],
    "ja": ["好きな映画は何？", "面白い話をして。", "今日は何をしたの？", "どこに旅行したい？"],
}
GOAL_FIRST_AUDIO_MS, GOAL_SENTENCE_TO_AUDIO_MS, GOAL_BARGE_IN_MS = 1000.0, 150.0, 200.0


def grpc_healthy(address: str) -> Callable[[], bool]:
    def probe() -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(address) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.RpcError:
                return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def http_healthy(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    return probe


@contextlib.contextmanager
def running(command: list[str], healthy: Callable[[], bool], timeout_s: float = 300.0
            ) -> Iterator[None]:
    """A kantoku process, once `healthy()` says so; stopped afterwards."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([KANTOKU, *command], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout_s
            while not healthy():
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"`kantoku {' '.join(command)}` did not start:\n"
                                     f"{log.read().decode(errors='replace')[-4000:]}")
                time.sleep(0.5)
            yield
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


async def spoken(services: str, text: str, voice: str) -> tuple[bytes, float, float]:
    """`text` in the project's voice as 16 kHz PCM16 with 300 ms of silence before and 1 s
    after; returns (pcm, ms of the first voiced sample, ms of the last)."""
    from scipy.signal import resample_poly

    async with ServiceClient(services) as client:
        result = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(
            text=text, voice_id=voice))
    pcm = np.frombuffer(b"".join(c.audio for c in result.chunks), "<i2").astype(np.float32)
    source_hz = result.header.sample_rate_hz
    voice_pcm = resample_poly(pcm, RATE_HZ, source_hz)
    window = RATE_HZ // 100
    levels = np.sqrt((voice_pcm[:len(voice_pcm) // window * window].reshape(-1, window) ** 2)
                     .mean(axis=1))
    loud = np.flatnonzero(levels > 300)
    lead = np.zeros(RATE_HZ * 300 // 1000)
    tail = np.zeros(RATE_HZ)
    audio = np.clip(np.concatenate([lead, voice_pcm, tail]), -32768, 32767).astype("<i2")
    return audio.tobytes(), 300 + loud[0] * 10.0, 300 + (loud[-1] + 1) * 10.0


async def send_speech(client: AvatarClient, pcm: bytes, marks_ms: tuple[float, float]
                      ) -> tuple[float, float]:
    """Send `pcm` at real-time pace; returns when the frames holding the first and the last
    voiced samples left (time.perf_counter())."""
    step = 2 * RATE_HZ * FRAME_MS // 1000
    sent: dict[int, float] = {}
    started = time.perf_counter()
    for offset in range(0, len(pcm), step):
        due = started + offset / 2 / RATE_HZ
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        sent[offset] = await client.send(pcm[offset:offset + step])

    def frame_of(ms: float) -> float:
        return sent[int(ms * RATE_HZ / 1000) * 2 // step * step]

    return frame_of(marks_ms[0]), frame_of(marks_ms[1])


def stats(values: list[float | None]) -> tuple[float, float] | None:
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    p90 = known[min(len(known) - 1, round(0.9 * (len(known) - 1)))]
    return statistics.median(known), p90


def row(name: str, values: list[float | None], goal: float | None = None) -> str:
    found = stats(values)
    if found is None:
        return f"  {name:44} {'-':>7} {'-':>7}"
    median, p90 = found
    versus = f"   {median / goal:4.2f}x the {goal:.0f} ms goal" if goal else ""
    return f"  {name:44} {median:7.0f} {p90:7.0f}{versus}"


async def conversation(url: str, services: str, persona: str, language: str, voice: str,
                       turns: int) -> None:
    lines = [await spoken(services, q, voice) for q in QUESTIONS[language]]
    measured: list[dict[str, Any]] = []
    async with AvatarClient(url) as client:
        ready = await client.start(persona, language)
        print(f"models: {ready['models']} (llm: {ready['llm']})")
        for turn in range(1, turns + 1):
            pcm, onset_ms, end_ms = lines[(turn - 1) % len(lines)]
            onset_at, speech_end_at = await send_speech(client, pcm, (onset_ms, end_ms))
            found: dict[str, Any] = {"turn": turn, "speech_end_at": speech_end_at}
            first_audio = await client.wait_for("audio", turn=turn, timeout=120)
            # this question talked over the last answer, unless that one had already ended
            # (`interrupted` overtakes everything, so it came before this turn's audio)
            if turn > 1 and (cuts := client.of("interrupted", turn - 1)):
                found["barge_in_ms"] = (cuts[0]["_at"] - onset_at) * 1000
                found["heard_ms"] = cuts[0]["heard_ms"]
            found["first_audio_ms"] = (first_audio["_at"] - speech_end_at) * 1000
            found["first_viseme_ms"] = (await client.wait_for(
                "visemes", turn=turn, timeout=60, where=lambda e: "frames" in e)
                )["_at"] * 1000 - speech_end_at * 1000
            if turn < turns:  # about a second of the answer, then the next question
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - first_audio["_at"])))
            else:
                await client.wait_for("reply_done", turn=turn, timeout=120)
            measured.append(found)
        for found in measured:
            found["server"] = await client.wait_for("turn_metrics", turn=found["turn"],
                                                    timeout=120)
        await client.send({"type": "stop"})
    report(measured, turns)


def report(measured: list[dict[str, Any]], turns: int) -> None:
    server = [m["server"] for m in measured]
    print(f"\n{turns} spoken turns, ms: {'median':>7} {'p90':>7}")
    print("from the end of the person's speech (as the person hears it):")
    print(row("→ first audio at the client", [m["first_audio_ms"] for m in measured],
              GOAL_FIRST_AUDIO_MS))
    print(row("→ first viseme frame at the client", [m["first_viseme_ms"] for m in measured]))
    print("from the VAD's end-of-turn decision (the server's turn_metrics):")
    print(row("the VAD's wait for silence before it", [s.get("end_of_turn_wait_ms")
                                                       for s in server]))
    speculative = [s for s in server if s.get("speculative")]
    print(row(f"turn started before it ({len(speculative)} of {len(server)} speculative)",
              [s.get("speculative_lead_ms") for s in speculative]))
    for mark in ("transcript", "first_token", "first_sentence", "first_audio", "first_viseme"):
        print(row(f"→ {mark.replace('_', ' ')}", [s[f"speech_end_to_{mark}_ms"]
                                                  for s in server]))
    print("steps:")
    print(row("speech recognition (asr_ms)", [s.get("asr_ms") for s in server]))
    print(row("LLM request → first token", [s.get("llm_first_token_ms") for s in server]))
    print(row("first complete sentence → first audio sent",
              [s["first_sentence_to_audio_ms"] for s in server], GOAL_SENTENCE_TO_AUDIO_MS))
    print(row("TTS call → first audio chunk", [s.get("tts_first_audio_ms") for s in server]))
    print(row("motion (visemes, gestures) per sentence", [s.get("motion_ms") for s in server]))
    print("barge-in (the next question talks over the answer):")
    print(row("first voiced frame sent → `interrupted` received",
              [m.get("barge_in_ms") for m in measured[1:]], GOAL_BARGE_IN_MS))
    print(row("the VAD's decision → `interrupted` written (server)",
              [s.get("stop_ms") for s in server[:-1]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--persona", default="joe", help="joe (English) or bell (Japanese, "
                        "needs OPENAI_BASE_URL: the embedded LLM chats in English only)")
    options = parser.parse_args()
    language, voice = {"joe": ("en", "en_US-joe-medium"), "bell": ("ja", "jf_alpha")}[
        options.persona]
    grpc_port, http_port = free_port(), free_port()
    services = f"127.0.0.1:{grpc_port}"
    with running(["serve", "tts", "motion", "asr", "--standalone", "--port", str(grpc_port)],
                 grpc_healthy(services)), \
            running(["avatar", "--port", str(http_port), "--server", services],
                    http_healthy(f"http://127.0.0.1:{http_port}/healthz")):
        asyncio.run(conversation(f"ws://127.0.0.1:{http_port}/v1/avatar", services,
                                 options.persona, language, voice, options.turns))


if __name__ == "__main__":
    main()
