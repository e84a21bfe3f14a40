"""What a hosted service takes at once: its Ray Serve deployments' RUNNING replicas times
`max_ongoing_requests`, and how far autoscaling may still grow them.

Read from Serve's instance details (the document behind `serve status` and the dashboard's REST
API) by any process connected to the cluster: the planner's jobs inside it, and each replica,
which answers `GetCapacity` over gRPC for jobs outside it (planner/capacity.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kantoku.v1 import common_pb2


@dataclass(frozen=True)
class DeploymentCapacity:
    """One deployment's replicas as Serve's controller reports them."""

    application: str
    deployment: str
    running: int
    max_ongoing_requests: int
    #: Set when Serve autoscales the deployment.
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None

    @property
    def slots(self) -> int:
        """Requests the RUNNING replicas take at once."""
        return self.running * self.max_ongoing_requests

    @property
    def demand(self) -> int:
        """Requests worth sending: the running slots; while autoscaling can still add replicas,
        enough to ask Serve for all of them (Serve scales on ongoing requests, and requests
        waiting in its router count), so a job never holds back the demand that grows it."""
        if (self.max_replicas is None or self.target_ongoing_requests is None
                or self.running >= self.max_replicas):
            return self.slots
        return max(self.slots, math.ceil(self.max_replicas * self.target_ongoing_requests))

    def to_proto(self) -> common_pb2.DeploymentCapacity:
        return common_pb2.DeploymentCapacity(
            application=self.application, deployment=self.deployment,
            running_replicas=self.running, max_ongoing_requests=self.max_ongoing_requests,
            max_replicas=self.max_replicas or 0,
            target_ongoing_requests=self.target_ongoing_requests or 0.0)

    @classmethod
    def from_proto(cls, message: common_pb2.DeploymentCapacity) -> DeploymentCapacity:
        scaling = message.max_replicas > 0
        return cls(application=message.application, deployment=message.deployment,
                   running=message.running_replicas,
                   max_ongoing_requests=max(1, message.max_ongoing_requests),
                   max_replicas=message.max_replicas if scaling else None,
                   target_ongoing_requests=(message.target_ongoing_requests or 1.0)
                   if scaling else None)


def capacities_from_details(details: dict[str, Any], applications: Sequence[str]
                            ) -> list[DeploymentCapacity]:
    """The deployments of `applications` in Serve's instance details."""
    found = []
    for app_name in applications:
        app = (details.get("applications") or {}).get(app_name)
        if not app:
            continue
        for name, deployment in (app.get("deployments") or {}).items():
            config = deployment.get("deployment_config") or {}
            scaling = config.get("autoscaling_config") or None
            running = sum(1 for r in deployment.get("replicas") or []
                          if r.get("state") == "RUNNING")
            found.append(DeploymentCapacity(
                application=app_name, deployment=name, running=running,
                max_ongoing_requests=int(config.get("max_ongoing_requests") or 1),
                max_replicas=int(scaling["max_replicas"]) if scaling else None,
                target_ongoing_requests=(float(scaling.get("target_ongoing_requests") or 1)
                                         if scaling else None)))
    return found


def serve_capacities(applications: Sequence[str]) -> list[DeploymentCapacity]:
    """The deployments of `applications` now, from Serve's controller (blocking; the calling
    process must be connected to Ray). Empty when Serve is not running."""
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    return capacities_from_details(client.get_serve_details(), applications) if client else []
