"""How many shots a job renders at once: the GPU services' live capacity, re-read as it runs.

A shot's render waits for a slot (`ShotSlots`); the number of slots follows what Ray Serve's
controller says the image and video deployments can run right now: their RUNNING replicas times
`max_ongoing_requests`. A job connected to the Ray cluster reads the controller itself; any
other job asks the services (`GetCapacity` through Serve's gRPC ingress), so `kantoku mv` beside
`kantoku up`, or on another machine, follows the same numbers. A replica that autoscaling adds,
or that is lost with its node, changes the number within one poll. `KANTOKU_MAX_PARALLEL_SHOTS`
caps it, and is the number used when the capacity cannot be read (standalone servers).

Why the sum of the two deployments: each shot in flight is in one stage at a time (image, then
video), so with image slots + video slots shots in flight the slower stage is always full;
the rest wait in Serve's router queue, never on an idle replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import KantokuError
from kantoku.services.capacity import DeploymentCapacity, serve_capacities

log = logging.getLogger(__name__)

#: Shots in flight when the capacity cannot be read and no cap is set.
FALLBACK_SHOTS = 4
#: The Serve applications whose replicas render shots (images, then clips).
GPU_APPLICATIONS = ("image", "video")


class CapacitySource(Protocol):
    """Reads the GPU deployments' capacity; None when it cannot be read."""

    async def read(self) -> list[DeploymentCapacity] | None: ...


class ServeCapacity:
    """Serve's controller, reached through the Ray this process is connected to (the studio
    and `kantoku up`'s jobs when they run inside the cluster; the benchmarks)."""

    def __init__(self, applications: Sequence[str] = GPU_APPLICATIONS) -> None:
        self.applications = tuple(applications)

    async def read(self) -> list[DeploymentCapacity] | None:
        import ray

        if not ray.is_initialized():
            return None
        try:
            found = await asyncio.to_thread(serve_capacities, self.applications)
        except Exception as exc:  # noqa: BLE001 (no controller, or it is restarting)
            log.debug("serve capacity unreadable: %s", exc)
            return None
        return found or None


class ServiceCapacity:
    """The capacity the GPU services report over gRPC (`GetCapacity`): what a job outside the
    Ray cluster reads, such as `kantoku mv` beside `kantoku up` or on another machine. Each
    replica reads Serve's controller for its own application.

    A standalone server reports no replicas (`hosted` false), and an older one does not know
    the call: either way this source gives up for the rest of the job, and the cap decides.
    """

    def __init__(self, client: ServiceClient,
                 applications: Sequence[str] = GPU_APPLICATIONS) -> None:
        self.client = client
        self.applications = tuple(applications)
        self.standalone = False
        self.last: list[DeploymentCapacity] | None = None

    async def read(self) -> list[DeploymentCapacity] | None:
        """The services' report; the last one while they cannot be reached (a proxy that
        restarts, a node being replaced)."""
        if self.standalone:
            return None
        try:
            replies = await asyncio.gather(*(self.client.get_capacity(app)
                                             for app in self.applications))
        except KantokuError as exc:
            self.standalone = exc.reason == "UNIMPLEMENTED"
            log.debug("service capacity unreadable: %s", exc)
            return None if self.standalone else self.last
        if not any(reply.hosted for reply in replies):
            self.standalone = True
            return None
        self.last = [DeploymentCapacity.from_proto(d) for reply in replies
                     for d in reply.deployments] or None
        return self.last


def default_source(client: ServiceClient | None = None) -> CapacitySource | None:
    """Serve's controller when this process is connected to Ray; else what the services at
    `client` report; else none (the fallback). A process that never imported Ray is not
    connected, and is spared the import."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return ServeCapacity()
    return ServiceCapacity(client) if client is not None else None


def shot_limit(capacities: list[DeploymentCapacity] | None, cap: int | None) -> int:
    """Shots in flight: the deployments' demand summed, at most `cap`; the cap (or
    FALLBACK_SHOTS) when nothing was read; never below 1, so a job waiting on replicas
    that restart keeps one request queued in Serve rather than none."""
    if not capacities:
        return cap or FALLBACK_SHOTS
    total = sum(c.demand for c in capacities)
    return max(1, min(total, cap) if cap else total)


def capacity_event(limit: int, capacities: list[DeploymentCapacity] | None,
                   cap: int | None = None) -> dict[str, Any]:
    """The job's `capacity` progress event: shots in flight now, the cap when it decided, and
    the replicas behind it (none when nothing reported them)."""
    capped = cap is not None and limit == cap and (
        not capacities or sum(c.demand for c in capacities) > cap)
    return {"event": "capacity", "shots_in_flight": limit, "capped": capped,
            "deployments": [{"application": c.application, "running": c.running,
                             "max_ongoing_requests": c.max_ongoing_requests,
                             "max_replicas": c.max_replicas} for c in capacities or []]}


class ShotSlots:
    """A FIFO gate for shot renders whose size follows a capacity source.

    Shots take slots in the order they ask (the graph sends the longest first). While any shot
    holds or waits for a slot, the source is read every `poll_s` seconds; a larger limit lets
    waiting shots in at once, a smaller one lets no new shot in until enough finish.
    """

    def __init__(self, source: CapacitySource | None, cap: int | None = None,
                 poll_s: float = 1.0,
                 on_limit: Callable[[int, list[DeploymentCapacity] | None], None] | None = None
                 ) -> None:
        self.source = source
        self.cap = cap
        self.poll_s = poll_s
        self.on_limit = on_limit
        self.limit = cap or FALLBACK_SHOTS
        self.in_flight = 0
        self.readings = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._read_once: asyncio.Future[int] | None = None
        self._poller: asyncio.Task[None] | None = None

    async def refresh(self) -> int:
        """Read the source now and apply the limit it gives; returns the limit."""
        capacities = await self.source.read() if self.source else None
        self.readings += 1
        self.set_limit(shot_limit(capacities, self.cap), capacities, first=self.readings == 1)
        return self.limit

    def set_limit(self, limit: int, capacities: list[DeploymentCapacity] | None = None,
                  first: bool = False) -> None:
        """Apply `limit`; `on_limit` hears the first one and every change."""
        if (first or limit != self.limit) and self.on_limit:
            self.on_limit(limit, capacities)
        self.limit = limit
        self._admit()

    def _admit(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    async def acquire(self) -> None:
        if self._read_once is None:
            self._read_once = asyncio.ensure_future(self.refresh())
        await asyncio.shield(self._read_once)
        self._ensure_poller()
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot came as this shot was cancelled: hand it on
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._admit()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _ensure_poller(self) -> None:
        if self.source is None or (self._poller and not self._poller.done()):
            return
        self._poller = asyncio.ensure_future(self._poll())

    async def _poll(self) -> None:
        while self.in_flight or self._waiters:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 (a failed read keeps the last limit)
                log.debug("capacity read failed: %s", exc)
