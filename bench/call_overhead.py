"""Per-call overhead: in-process servicer call vs standalone gRPC vs Ray Serve gRPC ingress,
plus the resident memory of each service process.

Every path serves the same unary call (TtsService.ListVoices and a short
MotionService.AnimateSpeech); the in-process call is the baseline measured in the same run.
Run: .venv/bin/python bench/call_overhead.py [--calls N] [--no-ray]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil

from kantoku.services._core.client import ServiceClient
from kantoku.services._core.server import free_port
from kantoku.services.catalog import SERVICES
from kantoku.v1 import motion_pb2, tts_pb2

TRACK = motion_pb2.PhonemeTrack(duration_s=1.0, phonemes=[
    tts_pb2.PhonemeTiming(phoneme=p, start_s=i * 0.1, end_s=(i + 1) * 0.1)
    for i, p in enumerate("hɛloʊwɜːld")])
MOTION = motion_pb2.AnimateSpeechRequest(phonemes=TRACK, fps=30)


async def measure(call: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def over_grpc(address: str, calls: int) -> tuple[float, float, list[int]]:
    async with ServiceClient(address, attempts=1) as client:
        voices = await measure(lambda: client.list_voices(), calls)
        motion = await measure(lambda: client.animate(MOTION), calls)
        pids = [(await client.animate(MOTION)).provenance.worker.pid]
        speech = client.synthesize(tts_pb2.SynthesizeSpeechRequest(text="Memory check."))
        pids += [r.provenance.worker.pid async for r in speech if r.HasField("provenance")]
    return voices, motion, pids


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    memory: list[tuple[str, float]] = []

    tts = SERVICES["tts"].build()
    motion = SERVICES["motion"].build()
    rows.append(("in-process", await measure(lambda: tts.ListVoices(
        tts_pb2.ListVoicesRequest(), None), args.calls),
        await measure(lambda: motion.AnimateSpeech(MOTION, None), args.calls)))
    memory.append(("in-process (both services, this process)", rss_mib(os.getpid())))

    kantoku = str(Path(sys.executable).with_name("kantoku"))
    port = free_port()
    server = subprocess.Popen([kantoku, "serve", "tts", "motion", "--standalone", "--port",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                voices, motion_ms, _ = await over_grpc(f"127.0.0.1:{port}", args.calls)
                break
            except Exception:  # noqa: BLE001 - still starting
                await asyncio.sleep(0.5)
        rows.append(("standalone gRPC", voices, motion_ms))
        memory.append(("standalone server (tts + motion)", rss_mib(server.pid)))
    finally:
        server.terminate()
        server.wait()

    if not args.no_ray:
        import ray
        from ray import serve

        from kantoku.services import hosting

        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        try:
            grpc_port = free_port()
            hosting.start_serve(grpc_port, free_port())
            hosting.deploy()
            voices, motion_ms, pids = await over_grpc(f"127.0.0.1:{grpc_port}", args.calls)
            rows.append(("Ray Serve gRPC", voices, motion_ms))
            memory.append(("Ray Serve motion replica", rss_mib(pids[0])))
            memory.append(("Ray Serve tts replica", rss_mib(pids[1])))
        finally:
            serve.shutdown()
            ray.shutdown()

    base_voices, base_motion = rows[0][1], rows[0][2]
    print(f"{'path':<18} {'ListVoices p50 ms':>18} {'x in-proc':>10} "
          f"{'AnimateSpeech p50 ms':>21} {'x in-proc':>10}")
    for name, voices, motion_ms in rows:
        print(f"{name:<18} {voices:18.3f} {voices / base_voices:10.1f} {motion_ms:21.3f} "
              f"{motion_ms / base_motion:10.1f}")
    print("\nresident memory")
    for name, mib in memory:
        print(f"  {name:<45} {mib:8.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
