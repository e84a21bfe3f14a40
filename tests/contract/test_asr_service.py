"""AsrService through an in-process grpc.aio server: the project's own voices, heard back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.audio import pcm16_wav_bytes
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.registry import ModelRegistry, WeightsHasher
from kantoku.services.asr.client import recognize
from kantoku.v1 import asr_pb2, asr_pb2_grpc

SENTENCES = {
    "en": ("en_US-joe-medium", "The weather is lovely today, so let us walk to the park."),
    "ja": ("jf_alpha", "今日はいい天気なので、公園まで歩きましょう。"),
}
# Character error rates measured with whisper-base int8 on these two sentences: 0.00 (en) and
# 0.00 (ja). The bounds leave room for int8 kernels that round differently on other CPUs.
MAX_CER = {"en": 0.15, "ja": 0.25}


def _normalise(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text.lower())


def character_error_rate(reference: str, heard: str) -> float:
    """Levenshtein distance over characters (case, spaces and punctuation ignored) / length."""
    ref, hyp = _normalise(reference), _normalise(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))


@pytest.fixture(scope="module")
def asr_servicer(store):  # noqa: ANN001, ANN201
    from kantoku.services.asr.factory import build_backend
    from kantoku.services.asr.servicer import AsrServicer

    return AsrServicer(build_backend(), store)


@pytest.fixture(scope="module")
def speech(tts_backends) -> dict[str, tuple[bytes, int]]:  # noqa: ANN001
    """PCM16 and its rate for each sentence, spoken by the project's TTS (Piper, Kokoro)."""
    spoken = {}
    for language, (voice_id, text) in SENTENCES.items():
        backend = next(b for b in tts_backends if voice_id in {v.voice_id for v in b.voices()})
        pcm = np.concatenate([s.pcm for s in backend.synthesize(text, voice_id, 1.0)])
        rate = next(v.sample_rate_hz for v in backend.voices() if v.voice_id == voice_id)
        spoken[language] = (pcm.astype("<i2").tobytes(), rate)
    return spoken


@pytest.fixture
async def asr_server(asr_servicer) -> AsyncIterator:  # noqa: ANN001
    from kantoku.services._core.server import ServiceBinding, start_server

    running = await start_server([ServiceBinding(
        asr_servicer, asr_pb2_grpc.add_AsrServiceServicer_to_server, "kantoku.v1.AsrService")],
        port=0)
    yield running
    await running.stop()


@pytest.fixture
async def asr_client(asr_server) -> AsyncIterator[ServiceClient]:  # noqa: ANN001
    async with ServiceClient(asr_server.address, attempts=1) as client:
        yield client


@pytest.mark.parametrize("language", ["en", "ja"])
async def test_spoken_sentence_is_heard_back(asr_client, speech, language) -> None:  # noqa: ANN001
    pcm, rate = speech[language]
    heard = await recognize(asr_client, pcm, rate, language)
    assert heard.language_code == language
    assert character_error_rate(SENTENCES[language][1], heard.text) <= MAX_CER[language]
    assert heard.duration_s == pytest.approx(len(pcm) / 2 / rate)
    # word timings: in order, inside the audio, and covering most of it
    assert heard.words
    starts = [start for _, start, _ in heard.words]
    assert starts == sorted(starts)
    assert all(0.0 <= start <= end <= heard.duration_s for _, start, end in heard.words)
    assert heard.words[-1][2] > 0.6 * heard.duration_s
    assert _normalise("".join(w for w, _, _ in heard.words)) == _normalise(heard.text)


async def test_language_is_detected_when_not_given(asr_client, speech) -> None:  # noqa: ANN001
    pcm, rate = speech["ja"]
    heard = await recognize(asr_client, pcm, rate)
    assert heard.language_code == "ja"
    assert 0.5 < heard.language_probability <= 1.0
    assert character_error_rate(SENTENCES["ja"][1], heard.text) <= MAX_CER["ja"]


@pytest.mark.parametrize("language", ["en", "ja"])
async def test_short_window_hears_what_the_full_window_hears(asr_client, asr_servicer, speech,  # noqa: ANN001
                                                             language, monkeypatch) -> None:
    # without word timings a short utterance goes through a 15 s encoder window, not 30 s
    pcm, rate = speech[language]
    assert asr_servicer.backend.window_frames == 1500
    fast = await recognize(asr_client, pcm, rate, language, word_timings=False)
    detected = await recognize(asr_client, pcm, rate, word_timings=False)
    monkeypatch.setattr(asr_servicer.backend, "window_frames", 0)
    full = await recognize(asr_client, pcm, rate, language, word_timings=False)
    assert character_error_rate(SENTENCES[language][1], fast.text) <= MAX_CER[language]
    assert fast.text == full.text == detected.text
    assert fast.language_code == detected.language_code == language
    assert 0.5 < detected.language_probability <= 1.0
    assert fast.words == [] and fast.duration_s == pytest.approx(len(pcm) / 2 / rate)


async def test_audio_longer_than_the_short_window_is_heard_whole(asr_client,  # noqa: ANN001
                                                                 tts_backends) -> None:
    # Different sentences: Whisper skips a sentence said over and over (not speech people make).
    text = ("The weather is lovely today, so let us walk to the park. After lunch we can visit "
            "the old library near the river. My sister wants to borrow a book about trains. "
            "In the evening we will cook dinner together and watch a film.")
    voice_id = SENTENCES["en"][0]
    backend = next(b for b in tts_backends if voice_id in {v.voice_id for v in b.voices()})
    rate = next(v.sample_rate_hz for v in backend.voices() if v.voice_id == voice_id)
    pause = np.zeros(rate // 2, dtype=np.int16)
    pcm = np.concatenate([np.concatenate([s.pcm, pause])
                          for s in backend.synthesize(text, voice_id, 0.8)])
    heard = await recognize(asr_client, pcm.astype("<i2").tobytes(), rate, "en",
                            word_timings=False)
    assert heard.duration_s > 15.0  # past the 15 s window, inside 30 s
    assert character_error_rate(text, heard.text) <= MAX_CER["en"]


@pytest.mark.parametrize("word_timings", [True, False])
@pytest.mark.parametrize("noise_dbfs", [None, -40.0])
async def test_silence_and_quiet_noise_are_heard_as_nothing(asr_client, noise_dbfs,  # noqa: ANN001
                                                            word_timings) -> None:
    rate = 16000
    samples = np.zeros(2 * rate) if noise_dbfs is None else np.random.default_rng(5).normal(
        0.0, 32768 * 10 ** (noise_dbfs / 20), 2 * rate)
    heard = await recognize(asr_client, samples.astype("<i2").tobytes(), rate, "en",
                            word_timings)
    assert heard.text == "" and heard.words == []
    assert heard.duration_s == pytest.approx(2.0)


async def test_provenance_names_the_weights_and_licence(asr_client, asr_servicer,  # noqa: ANN001
                                                        speech) -> None:
    pcm, rate = speech["en"]
    record = (await recognize(asr_client, pcm, rate, "en")).provenance
    assert record.kind == "asr" and record.model.model_id == "whisper-base"
    assert record.model.rights.license == "MIT"
    assert "OpenAI" in record.model.rights.rights_holder
    loaded = {w.path: w.sha256 for w in record.model.weights}
    registered = {w.path: w.sha256 for w in ModelRegistry().get("whisper-base").weights}
    assert loaded == registered
    assert loaded["model.bin"] == sha256_file(asr_servicer.backend.model_dir / "model.bin")
    # the audio heard is named by its digest, not kept
    assert record.inputs[0].size_bytes == len(pcm) and not record.inputs[0].uri
    assert record.parameters["sample_rate_hz"] == rate
    assert record.end_time.ToNanoseconds() >= record.start_time.ToNanoseconds()


async def test_wav_asset_is_heard_like_inline_audio(asr_client, store, speech) -> None:  # noqa: ANN001
    pcm, rate = speech["en"]
    ref = store.put_bytes(pcm16_wav_bytes(pcm, rate), "audio/wav")
    response = await asr_client.recognize(asr_pb2.RecognizeSpeechRequest(
        audio_asset=ref, language_code="en"))
    inline = await recognize(asr_client, pcm, rate, "en")
    assert response.transcript == inline.text
    assert response.provenance.inputs[0].uri == ref.uri
    assert not response.words  # only when asked for


@pytest.mark.parametrize(("kwargs", "field", "reason"), [
    ({"audio": b""}, "audio", "AUDIO_EMPTY"),
    ({}, "audio", "AUDIO_EMPTY"),
    ({"audio": b"\x00" * 3201}, "audio", "AUDIO_ODD_BYTES"),
    ({"audio": b"\x00" * 3200, "sample_rate_hz": 0}, "sample_rate_hz",
     "SAMPLE_RATE_OUT_OF_RANGE"),
    ({"audio": b"\x00" * 3200, "sample_rate_hz": 96000}, "sample_rate_hz",
     "SAMPLE_RATE_OUT_OF_RANGE"),
    ({"audio": b"\x00" * (2 * 16000 * 90)}, "audio", "AUDIO_TOO_LONG"),
    ({"audio": b"\x00" * 3200, "language_code": "xx"}, "language_code", "LANGUAGE_UNSUPPORTED"),
])
async def test_bad_input_is_invalid_argument_naming_the_field(asr_server, kwargs, field,  # noqa: ANN001
                                                              reason) -> None:
    request = asr_pb2.RecognizeSpeechRequest(**{"sample_rate_hz": 16000, **kwargs})
    async with grpc.aio.insecure_channel(asr_server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asr_pb2_grpc.AsrServiceStub(channel).RecognizeSpeech(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"{field}:")
    async with ServiceClient(asr_server.address, attempts=1) as client:
        with pytest.raises(KantokuError) as error:
            await client.recognize(request)
    assert error.value.category == Category.INVALID_REQUEST and error.value.reason == reason


def test_corrupt_cached_model_is_joined_again(tmp_path: Path) -> None:
    from kantoku.services.asr.backends.faster_whisper import prepare_model_dir

    entry = ModelRegistry().get("whisper-base")
    hasher = WeightsHasher()
    want = {w.path: w.sha256 for w in entry.weights}
    prepare_model_dir(entry, hasher, tmp_path)
    model = tmp_path / "model.bin"
    with open(model, "r+b") as handle:  # flip bytes in the middle, keep the size
        handle.seek(50_000_000)
        handle.write(b"\xff" * 64)
    (tmp_path / "config.json").unlink()
    weights = prepare_model_dir(entry, hasher, tmp_path)
    assert {w.path: w.sha256 for w in weights} == want
    assert sha256_file(model) == want["model.bin"]
    assert not [p for p in tmp_path.iterdir() if p.name not in want]  # no partial files left
