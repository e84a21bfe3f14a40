"""Durable jobs: a job id is the graph's thread id; its checkpoints live in SQLite (or Postgres).

`start_job` writes `OUT/job.json` before any work, then runs the graph; `resume_job` picks a
job up again after a crash, a kill -9 or a review pause. Both stream progress events and hand
the review interrupt to the caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kantoku.planner.capacity import ShotSlots, capacity_event, default_source
from kantoku.planner.claims import JOB_FILE, claim_folder, folder_job
from kantoku.planner.context import Event, JobContext
from kantoku.planner.finish.steps import clear_leftovers
from kantoku.planner.graph import build_graph
from kantoku.services._core.errors import KantokuError, not_found
from kantoku.services._core.files import write_text_atomic
from kantoku.services._core.settings import core_settings

#: Decides a review: True approves, False rejects, {"plan": {...}} approves an edited plan.
Reviewer = Callable[[dict[str, Any]], Awaitable[Any]]


class JobSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KANTOKU_", extra="ignore")

    #: `postgresql://...` for a shared Postgres; a file path for SQLite; empty: jobs.sqlite
    #: under KANTOKU_HOME.
    checkpoint_url: str = ""
    #: At most this many shots render at once; unset, the GPU services' live capacity decides
    #: (planner/capacity.py), and 4 is used where that cannot be read.
    max_parallel_shots: int | None = Field(default=None, ge=1, le=256)


@dataclass
class JobOutcome:
    job_id: str
    out_dir: Path
    state: dict[str, Any]
    #: True when the job stopped at review without a decision.
    paused: bool = False


@asynccontextmanager
async def open_checkpointer(url: str = "") -> AsyncIterator[BaseCheckpointSaver]:
    """SQLite under KANTOKU_HOME by default; Postgres when the URL says so."""
    url = url or JobSettings().checkpoint_url
    if url.startswith(("postgres://", "postgresql://")):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise KantokuError("a Postgres checkpoint URL needs `pip install kantoku[postgres]`",
                               "POSTGRES_MISSING") from None
        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(url) if url else core_settings().home_dir / "jobs.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def new_job_id() -> str:
    return f"job-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def write_job_file(folder: Path, job_id: str, status: str, **extra: Any) -> None:
    """Update `folder/job.json` for `job_id`, written whole so a kill never leaves half of it.

    Raises:
        KantokuError: FOLDER_TAKEN when the folder's job.json names another job (a folder
            belongs to one job; `kantoku edit` archives the old job's file first).
    """
    folder.mkdir(parents=True, exist_ok=True)
    owner = folder_job(folder)
    if owner is not None and owner != job_id:
        claim_folder(folder, job_id)
    path = folder / JOB_FILE
    try:
        document = json.loads(path.read_text()) if owner is not None else {}
    except (OSError, ValueError):
        document = {}
    document.update({"job_id": job_id, "status": status,
                     "updated": datetime.now(UTC).isoformat(timespec="seconds"), **extra})
    document.setdefault("created", document["updated"])
    write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False))


async def run_graph(saver: BaseCheckpointSaver, ctx: JobContext, graph_input: Any,
                    reviewer: Reviewer | None, on_event: Callable[[Event], None]) -> JobOutcome:
    """Run until the end or a review nobody answers; returns the final (or paused) state."""
    graph = build_graph().compile(checkpointer=saver)
    if ctx.slots is None:
        cap = JobSettings().max_parallel_shots
        ctx.slots = ShotSlots(default_source(ctx.client), cap=cap, on_limit=lambda limit, found:
                              on_event(capacity_event(limit, found, cap)))
    # The slots hold the shots back, in the graph's longest-first order; the graph runs all
    # of its tasks (a shot waiting for a slot costs nothing).
    config: dict[str, Any] = {"configurable": {"thread_id": ctx.job_id}}
    write_job_file(ctx.out_dir, ctx.job_id, "running")
    clear_leftovers(ctx.out_dir)  # a killed run's drafts; every step can start again
    try:
        while True:
            interrupted = None
            async for mode, chunk in graph.astream(graph_input, config, context=ctx,
                                                   stream_mode=["custom", "updates"]):
                if mode == "custom":
                    on_event(chunk)
                elif "__interrupt__" in chunk:
                    interrupted = chunk["__interrupt__"][0].value
            if interrupted is None:
                break
            write_job_file(ctx.out_dir, ctx.job_id, "awaiting_review")
            if reviewer is None:
                snapshot = await graph.aget_state(config)
                return JobOutcome(ctx.job_id, ctx.out_dir, dict(snapshot.values), paused=True)
            graph_input = Command(resume=await reviewer(interrupted))
            write_job_file(ctx.out_dir, ctx.job_id, "running")
    except KantokuError as exc:
        write_job_file(ctx.out_dir, ctx.job_id, "failed", error=str(exc), reason=exc.reason)
        raise
    except BaseException as exc:
        write_job_file(ctx.out_dir, ctx.job_id, "failed", error=repr(exc))
        raise
    snapshot = await graph.aget_state(config)
    write_job_file(ctx.out_dir, ctx.job_id, "done")
    return JobOutcome(ctx.job_id, ctx.out_dir, dict(snapshot.values))


async def saved_job(saver: BaseCheckpointSaver, job_id: str) -> tuple[dict[str, Any], bool]:
    """The checkpointed state of `job_id` and whether it waits for its review."""
    graph = build_graph().compile(checkpointer=saver)
    snapshot = await graph.aget_state({"configurable": {"thread_id": job_id}})
    if not snapshot.values:
        raise not_found(f"{job_id}: no such job in the job store; check the id in OUT/job.json",
                        reason="JOB_NOT_FOUND")
    return dict(snapshot.values), any(task.interrupts for task in snapshot.tasks)
