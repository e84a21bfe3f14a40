"""AsrService: proto <-> domain only. Checks the audio, resamples it to 16 kHz, asks the backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np

from kantoku.services._core.assets import AssetStore, sha256_bytes
from kantoku.services._core.audio import read_wav_mono
from kantoku.services._core.errors import invalid
from kantoku.services._core.provenance import StepRecorder
from kantoku.services._core.rpc import rpc
from kantoku.services.asr.backend import SAMPLE_RATE_HZ, AsrBackend, Recognition
from kantoku.v1 import asr_pb2, asr_pb2_grpc, common_pb2, tts_pb2

SERVICE_NAME = asr_pb2.DESCRIPTOR.services_by_name["AsrService"].full_name
MAX_DURATION_S = 30.0
MIN_RATE_HZ, MAX_RATE_HZ = 8000, 48000


class AsrServicer(asr_pb2_grpc.AsrServiceServicer):
    def __init__(self, backend: AsrBackend, store: AssetStore) -> None:
        self.backend = backend
        self.store = store

    @rpc
    async def RecognizeSpeech(self, request: asr_pb2.RecognizeSpeechRequest,
                              grpc_context: Any = None) -> asr_pb2.RecognizeSpeechResponse:
        language = self._check_language(request.language_code)
        samples, rate, source = self._samples(request)
        duration_s = len(samples) / rate
        if duration_s > MAX_DURATION_S:
            raise invalid(f"{source}: {duration_s:.1f} s is over the {MAX_DURATION_S:.0f} s "
                          "limit; send one utterance at a time", reason="AUDIO_TOO_LONG")
        recorder = StepRecorder(
            "asr", SERVICE_NAME, self.backend.entry.to_card(), self.backend.device,
            {"language_code": language, "word_timings": request.word_timings,
             "sample_rate_hz": rate, "duration_s": round(duration_s, 3)},
            [self._input_ref(request, rate)], weights=self.backend.weights())
        heard = await asyncio.to_thread(self.backend.recognize, _to_16k(samples, rate), language,
                                        request.word_timings)
        response = _response(heard, duration_s)
        # The transcript is named by its digest but not kept: a conversation's words stay with
        # the caller, who may store them.
        document = json.dumps({"transcript": heard.text, "language_code": heard.language_code},
                              ensure_ascii=False, sort_keys=True).encode()
        output = common_pb2.AssetRef(sha256=sha256_bytes(document),
                                     media_type="application/json", size_bytes=len(document))
        response.provenance.CopyFrom(recorder.finish(output))
        return response

    def _check_language(self, code: str) -> str:
        language = code.strip().split("-")[0].lower()
        if code and language not in self.backend.languages():
            raise invalid(f"language_code: {code!r} is not a language the recognizer knows; use "
                          "a BCP-47 code such as 'ja' or 'en', or leave it empty to detect it",
                          reason="LANGUAGE_UNSUPPORTED")
        return language

    def _samples(self, request: asr_pb2.RecognizeSpeechRequest) -> tuple[np.ndarray, int, str]:
        source = request.WhichOneof("audio_source")
        if source == "audio_asset":
            data = self.store.read_bytes(request.audio_asset)
            samples, rate = read_wav_mono(data, f"audio_asset {request.audio_asset.uri}")
            _check_rate(rate, "audio_asset")
            if not len(samples):
                raise invalid("audio_asset: the WAV holds no samples", reason="AUDIO_EMPTY")
            return samples, rate, "audio_asset"
        if source is None or not request.audio:
            raise invalid("audio: empty; send PCM16 mono samples (or an audio_asset WAV)",
                          reason="AUDIO_EMPTY")
        if len(request.audio) % 2:
            raise invalid(f"audio: {len(request.audio)} bytes is an odd count; PCM16 takes two "
                          "bytes a sample", reason="AUDIO_ODD_BYTES")
        _check_rate(request.sample_rate_hz, "sample_rate_hz")
        pcm = np.frombuffer(request.audio, dtype="<i2")
        return pcm.astype(np.float32) / 32768.0, request.sample_rate_hz, "audio"

    def _input_ref(self, request: asr_pb2.RecognizeSpeechRequest,
                   rate: int) -> common_pb2.AssetRef:
        if request.WhichOneof("audio_source") == "audio_asset":
            return request.audio_asset
        # Inline audio is named by its digest only; the service does not keep what it hears.
        return common_pb2.AssetRef(sha256=sha256_bytes(request.audio),
                                   media_type=f"audio/L16;rate={rate};channels=1",
                                   size_bytes=len(request.audio))


def _check_rate(rate: int, field: str) -> None:
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise invalid(f"{field}: {rate} Hz is outside {MIN_RATE_HZ}..{MAX_RATE_HZ}; give the "
                      "rate the audio was recorded at", reason="SAMPLE_RATE_OUT_OF_RANGE")


def _to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE_HZ:
        return samples.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    step = gcd(rate, SAMPLE_RATE_HZ)
    return resample_poly(samples, SAMPLE_RATE_HZ // step, rate // step).astype(np.float32)


def _response(heard: Recognition, duration_s: float) -> asr_pb2.RecognizeSpeechResponse:
    return asr_pb2.RecognizeSpeechResponse(
        transcript=heard.text, language_code=heard.language_code,
        language_probability=heard.language_probability, duration_s=duration_s,
        words=[tts_pb2.WordTiming(word=w.text, start_s=min(w.start_s, duration_s),
                                  end_s=min(w.end_s, duration_s)) for w in heard.words])
