"""The same servicers as Ray Serve deployments, called through Serve's gRPC ingress."""

from __future__ import annotations

import logging
import os

import grpc
import pytest

from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services.tts.client import synthesize
from kantoku.v1 import motion_pb2, tts_pb2

# A Ray cluster of its own: `make test-slow`.
pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOKEN = "serve-token"


@pytest.fixture(scope="module")
def serve_address():  # noqa: ANN201
    import ray
    from ray import serve

    from kantoku.services import hosting
    from tests.conftest import free_port

    # A cluster of its own (never one that happens to run on this machine); the token is
    # forwarded to the replicas and removed again whatever happens.
    os.environ["KANTOKU_AUTH_TOKEN"] = TOKEN
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        grpc_port = free_port()
        hosting.start_serve(grpc_port, free_port())
        hosting.deploy()
        yield f"127.0.0.1:{grpc_port}"
    finally:
        os.environ.pop("KANTOKU_AUTH_TOKEN", None)
        serve.shutdown()
        ray.shutdown()


async def test_speech_and_motion_through_the_ingress(serve_address) -> None:  # noqa: ANN001
    async with ServiceClient(serve_address, token=TOKEN) as client:
        voices = await client.list_voices("ja")
        assert {v.voice_id for v in voices.voices} >= {"jf_alpha", "jm_kumo"}
        speech = await synthesize(client, tts_pb2.SynthesizeSpeechRequest(
            text="Served by Ray. Timed by the model."))
        assert speech.provenance.worker.hosting == "ray-serve"
        assert speech.provenance.worker.pid != os.getpid()
        assert len(speech.chunks) == 2
        track = motion_pb2.PhonemeTrack(phonemes=[p for c in speech.chunks for p in c.phonemes],
                                        duration_s=speech.duration_s)
        motion = await client.animate(motion_pb2.AnimateSpeechRequest(phonemes=track, fps=30))
        assert motion.provenance.worker.hosting == "ray-serve"
        assert len(motion.visemes.frames) >= int(speech.duration_s * 30)


async def test_errors_keep_status_and_reason(serve_address) -> None:  # noqa: ANN001
    async with ServiceClient(serve_address, token=TOKEN, attempts=1) as client:
        with pytest.raises(KantokuError) as info:
            await synthesize(client, tts_pb2.SynthesizeSpeechRequest(text="hi", voice_id="bob"))
        assert info.value.category == Category.NOT_FOUND
        assert info.value.reason == "VOICE_NOT_FOUND"
        assert "jf_alpha" in info.value.message
        with pytest.raises(KantokuError) as info:
            await client.animate(motion_pb2.AnimateSpeechRequest(fps=500))
        assert info.value.category == Category.INVALID_REQUEST


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_token_is_checked_in_the_deployment(serve_address, token) -> None:  # noqa: ANN001
    async with ServiceClient(serve_address, token=token, attempts=1) as client:
        with pytest.raises(KantokuError) as info:
            await client.list_voices()
        assert info.value.category == Category.UNAUTHENTICATED
        with pytest.raises(KantokuError) as info:
            await synthesize(client, tts_pb2.SynthesizeSpeechRequest(text="hi"))
        assert info.value.category == Category.UNAUTHENTICATED


def test_serve_health_and_routes(serve_address) -> None:  # noqa: ANN001
    from ray.serve.generated import serve_pb2, serve_pb2_grpc

    with grpc.insecure_channel(serve_address) as channel:
        stub = serve_pb2_grpc.RayServeAPIServiceStub(channel)
        assert stub.Healthz(serve_pb2.HealthzRequest()).message == "success"
        apps = stub.ListApplications(serve_pb2.ListApplicationsRequest()).application_names
        assert {"tts", "motion"} <= set(apps)
