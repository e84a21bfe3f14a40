"""MotionService through an in-process grpc.aio server."""

import json

import numpy as np
import pytest

from kantoku.services._core.audio import float_to_pcm16, pcm16_wav_bytes
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services.tts.client import synthesize
from kantoku.v1 import common_pb2, motion_pb2, tts_pb2


async def test_speech_to_motion(client, store) -> None:  # noqa: ANN001
    speech = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(
        text="Nodding along to a really important point."))
    track = motion_pb2.PhonemeTrack(
        language_code="en", duration_s=speech.duration_s,
        phonemes=[p for c in speech.chunks for p in c.phonemes],
        words=[w for c in speech.chunks for w in c.words])
    response = await client.animate(motion_pb2.AnimateSpeechRequest(
        phonemes=track, fps=25, inputs=[speech.provenance.output]))
    frames = response.visemes.frames
    assert len(response.visemes.viseme_names) == 15
    assert len(frames) == int(np.ceil(speech.duration_s * 25))
    assert all(abs(sum(f.weights) - 1) < 1e-3 for f in frames)
    types = {k.type for k in response.gestures.keyframes}
    assert motion_pb2.GESTURE_TYPE_HEAD_NOD in types
    record = response.provenance
    assert record.inputs[0].sha256 == speech.provenance.output.sha256
    stored = json.loads(store.resolve(record.output.uri).read_text())
    assert len(stored["visemes"]["frames"]) == len(frames)


async def test_audio_asset_to_motion(client, store) -> None:  # noqa: ANN001
    rate = 16000
    t = np.arange(rate * 2) / rate
    audio = float_to_pcm16(np.where(t > 1.0, 0.4 * np.sin(2 * np.pi * 200 * t), 0.0))
    ref = store.put_bytes(pcm16_wav_bytes(audio.tobytes(), rate), "audio/wav")
    response = await client.animate(motion_pb2.AnimateSpeechRequest(audio=ref, fps=10))
    assert len(response.visemes.frames) == 20
    assert response.provenance.inputs[0].sha256 == ref.sha256


@pytest.mark.parametrize(("request_factory", "category", "reason"), [
    (lambda: motion_pb2.AnimateSpeechRequest(), Category.INVALID_REQUEST, "SOURCE_MISSING"),
    (lambda: motion_pb2.AnimateSpeechRequest(phonemes=motion_pb2.PhonemeTrack()),
     Category.INVALID_REQUEST, "PHONEMES_EMPTY"),
    (lambda: motion_pb2.AnimateSpeechRequest(fps=1000, phonemes=motion_pb2.PhonemeTrack(
        phonemes=[tts_pb2.PhonemeTiming(phoneme="a", start_s=0, end_s=1)])),
     Category.INVALID_REQUEST, "FPS_OUT_OF_RANGE"),
    (lambda: motion_pb2.AnimateSpeechRequest(phonemes=motion_pb2.PhonemeTrack(
        phonemes=[tts_pb2.PhonemeTiming(phoneme="a", start_s=2, end_s=1)])),
     Category.INVALID_REQUEST, "TIMING_INVALID"),
    (lambda: motion_pb2.AnimateSpeechRequest(phonemes=motion_pb2.PhonemeTrack(
        phonemes=[tts_pb2.PhonemeTiming(phoneme="a", start_s=0, end_s=4000)])),
     Category.INVALID_REQUEST, "SPEECH_TOO_LONG"),
    (lambda: motion_pb2.AnimateSpeechRequest(audio=common_pb2.AssetRef(uri="/etc/passwd")),
     Category.INVALID_REQUEST, "ASSET_OUTSIDE_STORE"),
    (lambda: motion_pb2.AnimateSpeechRequest(audio=common_pb2.AssetRef(
        uri="asset://sha256/" + "1" * 64)), Category.NOT_FOUND, "ASSET_NOT_FOUND"),
])
async def test_bad_requests(client, request_factory, category, reason) -> None:  # noqa: ANN001
    with pytest.raises(KantokuError) as info:
        await client.animate(request_factory())
    assert info.value.category == category
    assert info.value.reason == reason


async def test_corrupt_audio_asset(client, store) -> None:  # noqa: ANN001
    ref = store.put_bytes(b"RIFF not really a wav", "audio/wav")
    with pytest.raises(KantokuError) as info:
        await client.animate(motion_pb2.AnimateSpeechRequest(audio=ref))
    assert info.value.reason == "AUDIO_INVALID"
    assert "WAV" in info.value.message
