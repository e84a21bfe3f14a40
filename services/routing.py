"""Serve's request router for kantoku's deployments: each call to the least-loaded replica.

Serve's default router (power of two choices) looks at two random replicas per try, and when
both are full it backs off (25 ms, doubling) before two others. With one request per GPU
replica and a job that sends exactly as many shots as there are free replicas (planner/
capacity.py), the one free replica among eight is found in the first try a quarter of the time:
a shot waits a tenth of a second or more for a GPU that is idle. This router looks at every
replica's queue length (Serve's cache, updated as calls start and finish; full replicas are
probed again) and takes the least loaded, so a call never waits while a replica is idle, and
never queues behind a busy one. Requests keep their arrival order (FIFO), as in Serve's own.

Cost: one cache look-up per replica per call, which for GPU replica counts is nothing.
"""

from __future__ import annotations

from typing import Any

from ray.serve.config import RequestRouterConfig
from ray.serve.request_router import FIFOMixin, PendingRequest, RequestRouter, RunningReplica


class LeastLoadedRouter(FIFOMixin, RequestRouter):
    """Every running replica is a candidate; Serve picks the one with the shortest queue."""

    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None
                              ) -> list[list[RunningReplica]]:
        return [list(candidate_replicas)] if candidate_replicas else []


def least_loaded() -> Any:
    """The deployments' `request_router_config`."""
    path: Any = f"{__name__}.{LeastLoadedRouter.__name__}"  # Serve imports it where it routes
    return RequestRouterConfig(request_router_class=path)
