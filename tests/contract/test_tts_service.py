"""TtsService through an in-process grpc.aio server: streams, hashes, provenance, statuses."""

import wave
from io import BytesIO

import grpc
import pytest

from kantoku.services._core.assets import sha256_file
from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services.tts.client import synthesize
from kantoku.v1 import tts_pb2, tts_pb2_grpc


async def test_stream_is_header_chunks_then_provenance(server) -> None:  # noqa: ANN001
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        kinds = [r.WhichOneof("content") async for r in stub.SynthesizeSpeech(
            tts_pb2.SynthesizeSpeechRequest(text="One sentence. Two sentences. Three."))]
    assert kinds[0] == "header" and kinds[-1] == "provenance"
    assert kinds[1:-1] == ["chunk"] * 3


async def test_english_speech_matches_its_provenance(client, store, tts_backends) -> None:  # noqa: ANN001
    result = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(
        text="Kantoku speaks. Every word is timed."))
    record = result.provenance
    with wave.open(BytesIO(result.wav)) as wav:
        assert wav.getframerate() == result.header.sample_rate_hz == 22050
        assert wav.getnframes() / 22050 == pytest.approx(result.duration_s)
    # the blob in the store is the WAV the client assembled
    assert store.resolve(record.output.uri).read_bytes() == result.wav
    # provenance names the voice file actually loaded, its license and holder
    piper = next(b for b in tts_backends if "en_US-joe-medium.onnx" in getattr(b, "files", {}))
    loaded = {w.path: w.sha256 for w in record.model.weights}
    assert loaded["en_US-joe-medium.onnx"] == sha256_file(piper.files["en_US-joe-medium.onnx"])
    assert record.model.rights.license == "CC0-1.0"
    assert record.model.rights.rights_holder
    assert record.kind == "tts" and record.worker.pid > 0
    assert record.end_time.ToNanoseconds() >= record.start_time.ToNanoseconds()
    words = [w.word for c in result.chunks for w in c.words]
    assert words == ["Kantoku", "speaks", "Every", "word", "is", "timed"]
    last_end = max(p.end_s for c in result.chunks for p in c.phonemes)
    assert last_end == pytest.approx(result.duration_s, abs=0.02)


async def test_japanese_is_detected_and_timed(client) -> None:  # noqa: ANN001
    result = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(text="今日は晴れです。"))
    assert result.header.language_code == "ja"
    assert result.header.voice_id == "jf_alpha"
    assert result.header.sample_rate_hz == 24000
    assert [w.word for c in result.chunks for w in c.words][:2] == ["今日", "は"]
    assert result.provenance.model.rights.license == "Apache-2.0"


async def test_same_text_same_audio(client) -> None:  # noqa: ANN001
    request = tts_pb2.SynthesizeSpeechRequest(text="Same words, same sound.")
    first = await synthesize(client, request)
    second = await synthesize(client, request)
    assert first.provenance.output.sha256 == second.provenance.output.sha256
    assert first.provenance.step_id != second.provenance.step_id


async def test_list_voices_filters_by_language(client) -> None:  # noqa: ANN001
    everything = await client.list_voices()
    japanese = await client.list_voices("ja")
    assert {v.voice_id for v in everything.voices} >= {"en_US-joe-medium", "jf_alpha"}
    assert japanese.voices and all("ja" in v.language_codes for v in japanese.voices)
    assert all(v.model.rights.license for v in everything.voices)


@pytest.mark.parametrize(("request_kwargs", "category", "reason", "words"), [
    ({"text": ""}, Category.INVALID_REQUEST, "TEXT_EMPTY", "text"),
    ({"text": "   "}, Category.INVALID_REQUEST, "TEXT_EMPTY", "text"),
    ({"text": "a" * 5001}, Category.INVALID_REQUEST, "TEXT_TOO_LONG", "5000"),
    ({"text": "hello\x00world"}, Category.INVALID_REQUEST, "TEXT_CONTROL_CHAR", "U+0000"),
    ({"text": "hi", "voice_id": "nobody"}, Category.NOT_FOUND, "VOICE_NOT_FOUND", "jf_alpha"),
    ({"text": "hi", "speaking_rate": 9.0}, Category.INVALID_REQUEST, "RATE_OUT_OF_RANGE",
     "speaking_rate"),
    ({"text": "hi", "language_code": "xx"}, Category.INVALID_REQUEST, "LANGUAGE_UNSUPPORTED",
     "language_code"),
    ({"text": "hi", "voice_id": "jf_alpha", "language_code": "en"}, Category.INVALID_REQUEST,
     "VOICE_LANGUAGE_MISMATCH", "voice_id"),
    ({"text": "hi", "encoding": 7}, Category.INVALID_REQUEST, "ENCODING_UNSUPPORTED", "encoding"),
])
async def test_bad_requests_get_clear_statuses(client, request_kwargs, category, reason,  # noqa: ANN001
                                               words) -> None:
    with pytest.raises(KantokuError) as info:
        await synthesize(client, tts_pb2.SynthesizeSpeechRequest(**request_kwargs))
    assert info.value.category == category
    assert info.value.reason == reason
    assert words in info.value.message


async def test_malformed_bytes_are_invalid_argument(server) -> None:  # noqa: ANN001
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = channel.unary_unary("/kantoku.v1.TtsService/ListVoices",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"\xff\xff\xff\xff")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf" in info.value.details()


@pytest.mark.parametrize(("token", "reason"), [(None, "TOKEN_MISSING"), ("wrong", "TOKEN_INVALID")])
async def test_token_is_required_when_configured(secured_server, token, reason) -> None:  # noqa: ANN001
    async with ServiceClient(secured_server.address, token=token, attempts=1) as c:
        with pytest.raises(KantokuError) as info:
            await c.list_voices()
        assert info.value.category == Category.UNAUTHENTICATED
        assert info.value.reason == reason
        with pytest.raises(KantokuError):
            await synthesize(c, tts_pb2.SynthesizeSpeechRequest(text="hi"))


async def test_right_token_is_accepted(secured_server) -> None:  # noqa: ANN001
    async with ServiceClient(secured_server.address, token="s3cret-token") as c:
        assert (await c.list_voices()).voices


async def test_deadline_is_respected(server) -> None:  # noqa: ANN001
    async with ServiceClient(server.address, timeout_s=0.05, attempts=1) as c:
        with pytest.raises(KantokuError) as info:
            await synthesize(c, tts_pb2.SynthesizeSpeechRequest(text="A long sentence. " * 40))
    assert info.value.category == Category.DEADLINE_EXCEEDED
    # the server keeps serving afterwards
    async with ServiceClient(server.address) as c:
        assert (await c.list_voices()).voices


async def test_oversized_messages_are_refused(tts_servicer, motion_servicer) -> None:  # noqa: ANN001
    from kantoku.services._core.server import ServiceBinding, start_server
    from kantoku.services._core.settings import CoreSettings

    running = await start_server(
        [ServiceBinding(tts_servicer, tts_pb2_grpc.add_TtsServiceServicer_to_server,
                        "kantoku.v1.TtsService")],
        port=0, settings=CoreSettings(max_message_mb=1))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = tts_pb2_grpc.TtsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListVoices(tts_pb2.ListVoicesRequest(language_code="x" * 2_000_000))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await running.stop()
