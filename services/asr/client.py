"""The ASR service's client side: one utterance's PCM16 in, a Transcript out."""

from __future__ import annotations

from dataclasses import dataclass, field

from kantoku.services._core.client import ServiceClient
from kantoku.v1 import asr_pb2, common_pb2


@dataclass
class Transcript:
    """What the recognizer heard in one utterance."""

    text: str
    language_code: str
    #: (word, start_s, end_s), seconds from the start of the audio sent.
    words: list[tuple[str, float, float]] = field(default_factory=list)
    duration_s: float = 0.0
    language_probability: float = 0.0
    provenance: common_pb2.ProvenanceRecord = field(default_factory=common_pb2.ProvenanceRecord)


async def recognize(client: ServiceClient, pcm16: bytes, sample_rate_hz: int,
                    language_code: str = "", word_timings: bool = True) -> Transcript:
    """Transcribe one utterance of PCM16 LE mono audio (at most 30 s).

    Args:
        client: the channel to a server that hosts AsrService.
        pcm16: signed 16-bit little-endian mono samples.
        sample_rate_hz: their rate, 8000 to 48000.
        language_code: "ja", "en", ...; empty detects the language.
        word_timings: also time each word.

    Raises:
        KantokuError: INVALID_REQUEST naming the field for bad audio, rate or language.
    """
    response = await client.recognize(asr_pb2.RecognizeSpeechRequest(
        audio=pcm16, sample_rate_hz=sample_rate_hz, language_code=language_code,
        word_timings=word_timings))
    return transcript_from(response)


def transcript_from(response: asr_pb2.RecognizeSpeechResponse) -> Transcript:
    return Transcript(
        text=response.transcript, language_code=response.language_code,
        words=[(w.word, w.start_s, w.end_s) for w in response.words],
        duration_s=response.duration_s, language_probability=response.language_probability,
        provenance=response.provenance)
