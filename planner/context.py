"""What every node of a job's graph can reach: services, store, cache, ledger, the event stream.

The context is run-scoped (LangGraph `Runtime.context`): it is rebuilt when a job resumes and is
never checkpointed. Everything a node must remember goes into the graph state instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.config import get_stream_writer

from kantoku.planner.cache import RenderCache
from kantoku.planner.capacity import ShotSlots
from kantoku.planner.rights.ledger import Ledger
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.client import ServiceClient
from kantoku.v1 import common_pb2, image_pb2

Event = dict[str, Any]


@dataclass
class JobContext:
    job_id: str
    out_dir: Path
    client: ServiceClient
    store: AssetStore
    cache: RenderCache
    ledger: Ledger
    #: Character reference images, put into the store with their rights.
    references: list[image_pb2.ReferenceImage] = field(default_factory=list)
    #: Renders one shot; the default calls the services (benchmarks plug in simulated work).
    renderer: Callable[..., Awaitable[dict[str, Any]]] | None = None
    #: Receives progress events; the CLI draws them, the graph forwards them to stream readers.
    on_event: Callable[[Event], None] = lambda event: None
    #: Shot renders in flight, sized by the services' live capacity (planner/capacity.py);
    #: None leaves it to the graph's max_concurrency.
    slots: ShotSlots | None = None

    def emit(self, event: Event) -> None:
        """Send an event to the graph's custom stream (inside a run) or to `on_event`."""
        try:
            writer = get_stream_writer()
        except RuntimeError:  # outside a graph run
            writer = self.on_event
        writer(event)

    def progress(self, shot_id: str, kind: str) -> Callable[[common_pb2.Progress], None]:
        def forward(progress: common_pb2.Progress) -> None:
            self.emit({"event": "progress", "shot_id": shot_id, "kind": kind,
                       "stage": progress.stage, "step": progress.step,
                       "total_steps": progress.total_steps})
        return forward
