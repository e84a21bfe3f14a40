"""Building the ProvenanceRecord every service response carries."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from kantoku.v1 import common_pb2

SERVICE_VERSION = "0.1.0"


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def hosting_mode() -> str:
    """'ray-serve' inside a Serve replica, 'standalone' otherwise."""
    try:
        from ray import serve

        serve.get_replica_context()
        return "ray-serve"
    except Exception:  # noqa: BLE001 - not in a replica
        return "standalone"


def worker_info(device: str) -> common_pb2.WorkerInfo:
    """Where a step runs; inside a Serve replica also the Ray node (its IP address and id)."""
    hosting = hosting_mode()
    info = common_pb2.WorkerInfo(host=socket.gethostname(), device=device, pid=os.getpid(),
                                 hosting=hosting)
    if hosting == "ray-serve":
        import ray

        context = ray.get_runtime_context()
        info.node_id = context.get_node_id()
        info.node_ip = ray.util.get_node_ip_address()
    return info


class StepRecorder:
    """Collects one step's facts; `finish(output)` returns the signed-off record."""

    def __init__(
        self,
        kind: str,
        service: str,
        model: common_pb2.ModelCard,
        device: str,
        parameters: Mapping[str, Any],
        inputs: Sequence[common_pb2.AssetRef] = (),
        seed: int = 0,
        weights: Sequence[common_pb2.WeightsFile] | None = None,
    ) -> None:
        """`weights`, when given, replaces the registry's list with the files actually loaded."""
        self.record = common_pb2.ProvenanceRecord(
            step_id=uuid.uuid4().hex,
            kind=kind,
            service=service,
            service_version=SERVICE_VERSION,
            seed=seed,
            start_time=now(),
            worker=worker_info(device),
        )
        self.record.model.CopyFrom(model)
        if weights is not None:
            del self.record.model.weights[:]
            self.record.model.weights.extend(weights)
        self.record.inputs.extend(inputs)
        params = struct_pb2.Struct()
        params.update(dict(parameters))
        self.record.parameters.CopyFrom(params)

    def finish(self, output: common_pb2.AssetRef) -> common_pb2.ProvenanceRecord:
        self.record.end_time.CopyFrom(now())
        self.record.output.CopyFrom(output)
        return self.record
