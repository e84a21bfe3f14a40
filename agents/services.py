"""Where a product's jobs find their services.

`--server` when given, else the local stack (`kantoku up`), else an embedded gRPC server that
this process starts on a free loopback port for the job and stops afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kantoku.services._core.client import ServiceClient, resolve_server, stack_file
from kantoku.services._core.server import ServiceBinding, start_server
from kantoku.services._core.settings import core_settings
from kantoku.services.catalog import SERVICES


@asynccontextmanager
async def job_services(server: str | None, speech: bool = True) -> AsyncIterator[ServiceClient]:
    """A client for `--server`, the local stack, or an embedded server started for this job
    (with the speech services only when the job has dialogue: loading voices takes seconds)."""
    names = ["image", "video", *(["tts", "motion"] if speech else [])]
    async with product_services(server, names, timeout_s=3600) as client:
        yield client


@asynccontextmanager
async def product_services(server: str | None, names: list[str], timeout_s: float
                           ) -> AsyncIterator[ServiceClient]:
    """A client for `--server`, the local stack, or an embedded server with the services
    `names` (those of them the catalog has), started for the block and stopped after it."""
    settings = core_settings()
    if server or stack_file(settings).exists():
        async with ServiceClient(resolve_server(server, settings), settings.token,
                                 timeout_s=timeout_s) as client:
            yield client
        return
    names = [n for n in names if n in SERVICES]
    bindings = [ServiceBinding(SERVICES[n].build(), SERVICES[n].add_function(),
                               SERVICES[n].full_name) for n in names]
    running = await start_server(bindings, port=0)
    try:
        async with ServiceClient(running.address, settings.token, timeout_s=timeout_s) as client:
            yield client
    finally:
        await running.stop()
