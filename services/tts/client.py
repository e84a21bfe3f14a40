"""The TTS service's client side: stream a synthesis, check it, write the take's files."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from kantoku.services._core.assets import sha256_bytes
from kantoku.services._core.audio import pcm16_wav_bytes
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import internal
from kantoku.services._core.files import write_bytes_atomic, write_text_atomic
from kantoku.v1 import common_pb2, tts_pb2

ProgressFn = Callable[[float], None]


@dataclass
class SpeechResult:
    wav: bytes
    header: tts_pb2.SpeechHeader
    chunks: list[tts_pb2.AudioChunk] = field(default_factory=list)
    provenance: common_pb2.ProvenanceRecord = field(default_factory=common_pb2.ProvenanceRecord)

    @property
    def duration_s(self) -> float:
        return sum(c.duration_s for c in self.chunks)

    def timings_document(self, text: str) -> dict[str, Any]:
        """What `OUT.wav.json` holds: timings as {start_s, end_s} objects plus provenance."""
        return {
            "text": text,
            "voice_id": self.header.voice_id,
            "language_code": self.header.language_code,
            "sample_rate_hz": self.header.sample_rate_hz,
            "duration_s": round(self.duration_s, 6),
            "sentences": [{"text": c.text, "start_s": round(c.start_s, 6),
                           "end_s": round(c.start_s + c.duration_s, 6)} for c in self.chunks],
            "phonemes": [{"phoneme": p.phoneme, "start_s": round(p.start_s, 6),
                          "end_s": round(p.end_s, 6)} for c in self.chunks for p in c.phonemes],
            "words": [{"word": w.word, "start_s": round(w.start_s, 6),
                       "end_s": round(w.end_s, 6)} for c in self.chunks for w in c.words],
            "provenance": json_format.MessageToDict(self.provenance,
                                                    preserving_proto_field_name=True),
        }


async def synthesize(client: ServiceClient, request: tts_pb2.SynthesizeSpeechRequest,
                     on_audio: ProgressFn | None = None) -> SpeechResult:
    """Stream one synthesis; the assembled WAV must hash to what the server recorded."""
    header: tts_pb2.SpeechHeader | None = None
    result: SpeechResult | None = None
    pcm: list[bytes] = []
    async for response in client.synthesize(request):
        kind = response.WhichOneof("content")
        if kind == "header":
            header = response.header
            result = SpeechResult(b"", header)
        elif kind == "chunk" and result is not None:
            result.chunks.append(response.chunk)
            pcm.append(response.chunk.audio)
            if on_audio:
                on_audio(result.duration_s)
        elif kind == "provenance" and result is not None:
            result.provenance = response.provenance
    if header is None or result is None or not result.provenance.step_id:
        raise internal("the TTS stream ended early (no header or provenance); try again",
                       reason="STREAM_INCOMPLETE")
    result.wav = pcm16_wav_bytes(b"".join(pcm), header.sample_rate_hz, header.channels or 1)
    if sha256_bytes(result.wav) != result.provenance.output.sha256:
        raise internal("the received audio does not match the sha256 the server recorded",
                       reason="AUDIO_HASH_MISMATCH")
    return result


def write_speech(result: SpeechResult, text: str, out: Path) -> Path:
    write_bytes_atomic(out, result.wav)
    sidecar = out.with_name(out.name + ".json")
    write_text_atomic(sidecar, json.dumps(result.timings_document(text), indent=2,
                                          ensure_ascii=False))
    return sidecar
