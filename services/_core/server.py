"""Standalone hosting: a grpc.aio server with health, reflection, auth, limits, graceful stop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kantoku.services._core.auth import BearerTokenInterceptor
from kantoku.services._core.settings import CoreSettings, core_settings

log = logging.getLogger(__name__)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for tests, benchmarks and the local stack)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer instance and how to register it: `add_XServicer_to_server` and the full name."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    full_name: str


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    bindings: Sequence[ServiceBinding]
    grace_period_s: float

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Mark every service NOT_SERVING, then let in-flight calls finish within the grace."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.grace_period_s)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


class StrictDecodingInterceptor(grpc.aio.ServerInterceptor):
    """A request that is not valid protobuf gets INVALID_ARGUMENT instead of grpc's UNKNOWN.

    Every handler with a unary request is wrapped to decode it; a response-streaming handler
    keeps its kind: an async generator stays one, a coroutine that writes with
    ``context.write`` stays a coroutine.
    """

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        decode = handler.request_deserializer
        method = handler_call_details.method

        async def parse(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            try:
                return decode(raw)
            except DecodeError:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"{method}: the request is not a valid protobuf message; "
                                    "send the message type the proto defines")

        kwargs = {"request_deserializer": None,
                  "response_serializer": handler.response_serializer}
        if handler.response_streaming:
            behaviour = handler.unary_stream
            if inspect.iscoroutinefunction(behaviour):
                # Writes with `await context.write(...)` (the stock health servicer's Watch);
                # grpc tells the two kinds apart the same way, so each keeps its own.
                async def written(raw: bytes, context: grpc.aio.ServicerContext) -> None:
                    await behaviour(await parse(raw, context), context)

                return grpc.unary_stream_rpc_method_handler(written, **kwargs)

            async def stream(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
                async for item in behaviour(await parse(raw, context), context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(stream, **kwargs)
        unary_behaviour = handler.unary_unary

        async def unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            return await unary_behaviour(await parse(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary, **kwargs)


def channel_options(settings: CoreSettings) -> list[tuple[str, int]]:
    limit = settings.max_message_mb * 1024 * 1024
    return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]


async def start_server(
    bindings: Sequence[ServiceBinding],
    host: str = "127.0.0.1",
    port: int = 0,
    settings: CoreSettings | None = None,
) -> RunningServer:
    """Start serving `bindings` on host:port (port 0 picks a free one)."""
    settings = settings or core_settings()
    interceptors: list[grpc.aio.ServerInterceptor] = [StrictDecodingInterceptor()]
    if settings.token:
        interceptors.insert(0, BearerTokenInterceptor(settings.token))
    server = grpc.aio.server(interceptors=interceptors, options=channel_options(settings))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for binding in bindings:
        binding.add_to_server(binding.servicer, server)
    names = [b.full_name for b in bindings]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME],
                                        server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not listen on {host}:{port}; is the port in use?")
    await server.start()
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s on %s:%d", ", ".join(names), host, bound)
    return RunningServer(server, bound, health_servicer, bindings, settings.grace_period_s)


async def serve_forever(bindings: Sequence[ServiceBinding], host: str, port: int,
                        on_ready: Callable[[RunningServer], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully; a second signal stops at once.

    In-flight calls get the grace period; then they are cancelled, which stops their backend
    work at its next frame or step (streaming.run_with_progress), so the process exits promptly.
    """
    running = await start_server(bindings, host, port)
    if on_ready:
        on_ready(running)
    signals = 0
    stop, now = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        (stop if signals == 1 else now).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await stop.wait()
    log.info("stopping: in-flight calls get %.1f s", running.grace_period_s)
    graceful = asyncio.ensure_future(running.stop())
    hurry = asyncio.ensure_future(now.wait())
    await asyncio.wait({graceful, hurry}, return_when=asyncio.FIRST_COMPLETED)
    if not graceful.done():
        await running.server.stop(0)
        await graceful
    hurry.cancel()
