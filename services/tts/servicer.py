"""TtsService: proto <-> domain only. Routes each request to the backend that owns the voice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.audio import pcm16_wav_bytes
from kantoku.services._core.errors import Category, KantokuError, invalid, not_found
from kantoku.services._core.provenance import StepRecorder
from kantoku.services._core.rpc import rpc
from kantoku.services.tts.backend import SpeechSegment, TtsBackend, Voice
from kantoku.services.tts.language import base_language, detect_language
from kantoku.v1 import tts_pb2, tts_pb2_grpc

#: Control characters a voice cannot speak (NUL, escapes); line breaks and tabs are spacing.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

MAX_TEXT_CHARS = 5000
SERVICE_NAME = tts_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name
DEFAULT_VOICES = {"en": "en_US-joe-medium", "ja": "jf_alpha"}


class TtsServicer(tts_pb2_grpc.TtsServiceServicer):
    def __init__(self, backends: Sequence[TtsBackend], store: AssetStore) -> None:
        self.store = store
        self._voices: dict[str, tuple[Voice, TtsBackend]] = {}
        for backend in backends:
            for voice in backend.voices():
                self._voices[voice.voice_id] = (voice, backend)

    @rpc
    async def ListVoices(self, request: tts_pb2.ListVoicesRequest,
                         grpc_context: Any = None) -> tts_pb2.ListVoicesResponse:
        wanted = base_language(request.language_code) if request.language_code else None
        voices = [
            tts_pb2.Voice(voice_id=v.voice_id, language_codes=list(v.language_codes),
                          sample_rate_hz=v.sample_rate_hz, model=v.entry.to_card())
            for v, _ in self._voices.values()
            if wanted is None or wanted in {base_language(c) for c in v.language_codes}
        ]
        return tts_pb2.ListVoicesResponse(voices=voices)

    @rpc
    async def SynthesizeSpeech(self, request: tts_pb2.SynthesizeSpeechRequest,
                               grpc_context: Any = None
                               ) -> AsyncIterator[tts_pb2.SynthesizeSpeechResponse]:
        text, rate, language = self._check_request(request)
        voice, backend = self._pick_voice(request.voice_id, language)
        weights = await asyncio.to_thread(backend.weights, voice.voice_id)
        recorder = StepRecorder("tts", SERVICE_NAME, voice.entry.to_card(), backend.device,
                                {"text": text, "voice_id": voice.voice_id,
                                 "language_code": language, "speaking_rate": rate},
                                weights=weights)
        yield tts_pb2.SynthesizeSpeechResponse(header=tts_pb2.SpeechHeader(
            voice_id=voice.voice_id, language_code=language,
            encoding=tts_pb2.AUDIO_ENCODING_LINEAR16, sample_rate_hz=voice.sample_rate_hz,
            channels=1, model_id=voice.entry.id))

        pcm_parts: list[bytes] = []
        offset_s = 0.0
        segments = backend.synthesize(text, voice.voice_id, rate)
        while (segment := await asyncio.to_thread(_next_or_none, segments)) is not None:
            _check_deadline(grpc_context)
            chunk = _chunk(segment, offset_s, voice.sample_rate_hz)
            pcm_parts.append(chunk.audio)
            offset_s += chunk.duration_s
            yield tts_pb2.SynthesizeSpeechResponse(chunk=chunk)

        wav = pcm16_wav_bytes(b"".join(pcm_parts), voice.sample_rate_hz)
        output = self.store.put_bytes(wav, "audio/wav")
        yield tts_pb2.SynthesizeSpeechResponse(provenance=recorder.finish(output))

    def _check_request(self, request: tts_pb2.SynthesizeSpeechRequest) -> tuple[str, float, str]:
        text = request.text.strip()
        if not text:
            raise invalid("text: must not be empty; pass the words to speak", reason="TEXT_EMPTY")
        if len(text) > MAX_TEXT_CHARS:
            raise invalid(f"text: {len(text)} characters is over the {MAX_TEXT_CHARS}-character "
                          "limit; split it into several requests", reason="TEXT_TOO_LONG")
        if (control := _CONTROL.search(text)) is not None:
            raise invalid(f"text: holds the control character U+{ord(control.group()):04X} at "
                          f"character {control.start()}; remove it", reason="TEXT_CONTROL_CHAR")
        rate = request.speaking_rate or 1.0
        if not 0.5 <= rate <= 2.0:
            raise invalid(f"speaking_rate: {rate} is outside 0.5..2.0", reason="RATE_OUT_OF_RANGE")
        if request.encoding not in (tts_pb2.AUDIO_ENCODING_UNSPECIFIED,
                                    tts_pb2.AUDIO_ENCODING_LINEAR16):
            raise invalid("encoding: only AUDIO_ENCODING_LINEAR16 is supported",
                          reason="ENCODING_UNSUPPORTED")
        language = base_language(request.language_code) if request.language_code else ""
        language = language or detect_language(text)
        if language not in DEFAULT_VOICES:
            raise invalid(f"language_code: {request.language_code!r} is not supported; use one of "
                          f"{', '.join(sorted(DEFAULT_VOICES))}", reason="LANGUAGE_UNSUPPORTED")
        return text, rate, language

    def _pick_voice(self, voice_id: str, language: str) -> tuple[Voice, TtsBackend]:
        voice_id = voice_id or DEFAULT_VOICES[language]
        if voice_id not in self._voices:
            raise not_found(f"voice_id: unknown voice {voice_id!r}; available voices: "
                            f"{', '.join(sorted(self._voices))}", reason="VOICE_NOT_FOUND",
                            voice_id=voice_id)
        voice, backend = self._voices[voice_id]
        if language not in {base_language(c) for c in voice.language_codes}:
            raise invalid(f"voice_id: {voice_id} speaks {', '.join(voice.language_codes)}, not "
                          f"{language}; pick a {language} voice or set language_code",
                          reason="VOICE_LANGUAGE_MISMATCH")
        return voice, backend


def _next_or_none(segments: Iterator[SpeechSegment]) -> SpeechSegment | None:
    return next(segments, None)


def _check_deadline(grpc_context: Any) -> None:
    remaining = getattr(grpc_context, "time_remaining", lambda: None)()
    if remaining is not None and remaining <= 0:
        raise KantokuError("deadline exceeded while synthesizing; raise the client deadline",
                           "DEADLINE_EXCEEDED", Category.DEADLINE_EXCEEDED)


def _chunk(segment: SpeechSegment, offset_s: float, sample_rate_hz: int) -> tts_pb2.AudioChunk:
    pcm = np.asarray(segment.pcm, dtype="<i2")
    return tts_pb2.AudioChunk(
        audio=pcm.tobytes(),
        start_s=offset_s,
        duration_s=len(pcm) / sample_rate_hz,
        text=segment.text,
        phonemes=[tts_pb2.PhonemeTiming(phoneme=p.label, start_s=offset_s + p.start_s,
                                        end_s=offset_s + p.end_s) for p in segment.phonemes],
        words=[tts_pb2.WordTiming(word=w.label, start_s=offset_s + w.start_s,
                                  end_s=offset_s + w.end_s) for w in segment.words],
    )

