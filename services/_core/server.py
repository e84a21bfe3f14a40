"""Standalone hosting: a grpc.aio server with health, reflection, auth, limits, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kantoku.services._core.auth import BearerTokenInterceptor
from kantoku.services._core.settings import CoreSettings, core_settings

log = logging.getLogger(__name__)


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
    interceptors = [BearerTokenInterceptor(settings.token)] if settings.token else []
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
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    running = await start_server(bindings, host, port)
    if on_ready:
        on_ready(running)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
