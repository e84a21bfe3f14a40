"""The client side of every kantoku service: one channel, auth, Serve routing, retries.

`ServiceClient` holds one channel to a standalone server or the Ray Serve gRPC ingress and has a
typed method per RPC; each service's `client.py` (`services/tts/client.py`, ...) builds on it
with what a caller wants back (a checked WAV, an image result with its progress reported).
Inputs and outputs travel as AssetRefs through the shared asset store ($KANTOKU_HOME/assets), so
the client and the services must share KANTOKU_HOME (the local stack and standalone servers do).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import KantokuError, internal, unavailable
from kantoku.services._core.files import write_bytes_atomic, write_text_atomic
from kantoku.services._core.rpc import error_from_rpc
from kantoku.services._core.server import channel_options
from kantoku.services._core.settings import CoreSettings, core_settings
from kantoku.v1 import (
    asr_pb2,
    asr_pb2_grpc,
    common_pb2,
    image_pb2,
    image_pb2_grpc,
    motion_pb2,
    motion_pb2_grpc,
    tts_pb2,
    tts_pb2_grpc,
    video_pb2,
    video_pb2_grpc,
)

T = TypeVar("T")
ProgressFn = Callable[[common_pb2.Progress], None]
STACK_FILE = "stack.json"


def stack_file(settings: CoreSettings | None = None) -> Path:
    return (settings or core_settings()).home_dir / STACK_FILE


def resolve_server(server: str | None, settings: CoreSettings | None = None) -> str:
    """`--server` when given, else the gRPC address `kantoku up` recorded."""
    if server:
        return server
    path = stack_file(settings)
    if path.exists():
        return str(json.loads(path.read_text())["grpc_address"])
    raise unavailable("no server: pass --server HOST:PORT, or start the local stack with "
                      "`kantoku up`", reason="NO_SERVER")


@dataclass
class ServiceClient:
    """One channel to a standalone server or the Ray Serve gRPC ingress."""

    address: str
    token: str | None = None
    timeout_s: float = 120.0
    #: Transient failures are retried up to `attempts` times within `retry_s` seconds, with
    #: backoff from 0.25 s to 2 s: long enough for Ray Serve to bring back a replica (~5 s).
    attempts: int = 6
    retry_s: float = 15.0

    def __post_init__(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.address,
                                                 options=channel_options(core_settings()))

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def metadata(self, application: str) -> list[tuple[str, str]]:
        # "application" routes the call on Ray Serve; standalone servers ignore it.
        pairs = [("application", application)]
        if self.token:
            pairs.append(("authorization", f"Bearer {self.token}"))
        return pairs

    async def unary(self, application: str, call: Callable[..., Any], request: Any) -> Any:
        async for attempt in self._retrying():
            with attempt:
                try:
                    return await call(request, metadata=self.metadata(application),
                                      timeout=self.timeout_s)
                except grpc.RpcError as exc:
                    raise self._error(exc) from None
        raise AssertionError("unreachable")

    async def stream(self, application: str, call: Callable[..., Any],
                     request: Any, replayable: bool = False) -> AsyncIterator[Any]:
        """Server-streaming call; retried only while nothing has been received yet, unless
        `replayable` (a generation whose progress events may start again before its result)."""
        async for attempt in self._retrying():
            with attempt:
                received = False
                try:
                    async for item in call(request, metadata=self.metadata(application),
                                           timeout=self.timeout_s):
                        received = not replayable
                        yield item
                    return
                except grpc.RpcError as exc:
                    err = self._error(exc)
                    err.partial = received  # type: ignore[attr-defined]
                    raise err from None

    def _error(self, exc: grpc.RpcError) -> KantokuError:
        err = error_from_rpc(exc)
        if err.reason == "UNAVAILABLE":  # the transport's own words are long; say what to do
            err.message = (f"cannot reach a kantoku server at {self.address}; start one "
                           "(`kantoku up` or `kantoku serve --standalone`) or fix --server")
        return err

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.retry_s),
            wait=wait_exponential(multiplier=0.25, max=2.0),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )

    # -- typed helpers ---------------------------------------------------------------------

    def tts(self) -> tts_pb2_grpc.TtsServiceStub:
        return tts_pb2_grpc.TtsServiceStub(self.channel)

    def motion(self) -> motion_pb2_grpc.MotionServiceStub:
        return motion_pb2_grpc.MotionServiceStub(self.channel)

    def asr(self) -> asr_pb2_grpc.AsrServiceStub:
        return asr_pb2_grpc.AsrServiceStub(self.channel)

    def synthesize(self, request: tts_pb2.SynthesizeSpeechRequest
                   ) -> AsyncIterator[tts_pb2.SynthesizeSpeechResponse]:
        return self.stream("tts", self.tts().SynthesizeSpeech, request)

    async def list_voices(self, language_code: str = "") -> tts_pb2.ListVoicesResponse:
        return await self.unary("tts", self.tts().ListVoices,
                                tts_pb2.ListVoicesRequest(language_code=language_code))

    def generate_image(self, request: image_pb2.GenerateImageRequest
                       ) -> AsyncIterator[image_pb2.GenerateImageResponse]:
        return self.stream("image", image_pb2_grpc.ImageServiceStub(self.channel).GenerateImage,
                           request, replayable=True)

    def generate_video(self, request: video_pb2.GenerateVideoRequest
                       ) -> AsyncIterator[video_pb2.GenerateVideoResponse]:
        return self.stream("video", video_pb2_grpc.VideoServiceStub(self.channel).GenerateVideo,
                           request, replayable=True)

    async def get_capacity(self, application: str, timeout_s: float = 5.0
                           ) -> common_pb2.GetCapacityResponse:
        """The replicas serving `application` (image or video) now; asked once, not retried
        (a job polls it, and keeps its last reading when a poll fails)."""
        stub = (image_pb2_grpc.ImageServiceStub if application == "image"
                else video_pb2_grpc.VideoServiceStub)(self.channel)
        try:
            return await stub.GetCapacity(common_pb2.GetCapacityRequest(),
                                          metadata=self.metadata(application), timeout=timeout_s)
        except grpc.RpcError as exc:
            raise self._error(exc) from None

    async def animate(self, request: motion_pb2.AnimateSpeechRequest
                      ) -> motion_pb2.AnimateSpeechResponse:
        return await self.unary("motion", self.motion().AnimateSpeech, request)

    async def recognize(self, request: asr_pb2.RecognizeSpeechRequest
                        ) -> asr_pb2.RecognizeSpeechResponse:
        return await self.unary("asr", self.asr().RecognizeSpeech, request)


def _retryable(exc: BaseException) -> bool:
    # A stream that already delivered items is not replayed: the caller would see duplicates.
    return isinstance(exc, KantokuError) and exc.transient and not getattr(exc, "partial", False)


def client_for(server: str | None, timeout_s: float = 120.0) -> ServiceClient:
    settings = core_settings()
    return ServiceClient(resolve_server(server, settings), settings.token, timeout_s)


def store() -> AssetStore:
    return AssetStore(core_settings().assets_dir)


async def stream_result(stream: AsyncIterator[Any], on_progress: ProgressFn | None,
                        what: str) -> Any:
    """Report a generation stream's progress events; return its final result."""
    result = None
    async for response in stream:
        if response.HasField("progress") and on_progress:
            on_progress(response.progress)
        elif response.HasField("result"):
            result = response.result
    if result is None:
        raise internal(f"the {what} stream ended without a result; try again",
                       reason="STREAM_INCOMPLETE")
    return result


def _document(result: Any) -> dict[str, Any]:
    return json_format.MessageToDict(result, preserving_proto_field_name=True)


def save_result(ref: common_pb2.AssetRef, result: Any, out: Path) -> Path:
    """Copy the asset to `out` and write `out.json` (the result with its provenance)."""
    data = store().read_bytes(ref)
    write_bytes_atomic(out, data)
    sidecar = out.with_name(out.name + ".json")
    write_text_atomic(sidecar, json.dumps(_document(result), indent=2, ensure_ascii=False))
    return sidecar
