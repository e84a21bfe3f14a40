"""Run blocking backend work in a thread and stream its progress as it happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from kantoku.v1 import common_pb2


async def run_with_progress(work: Callable[..., Any], *args: Any) -> AsyncIterator[Any]:
    """Yield common_pb2.Progress events while `work(*args, progress)` runs, then its result.

    `work` gets a `progress(stage, step, total_steps)` callback as its last argument.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[common_pb2.Progress | None] = asyncio.Queue()

    def progress(stage: str, step: int, total: int) -> None:
        if total > 100 and step % (total // 100) and step != total:
            return  # about a hundred events per stage is plenty
        event = common_pb2.Progress(stage=stage, step=step, total_steps=total)
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> Any:
        try:
            return work(*args, progress)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    while (event := await queue.get()) is not None:
        yield event
    yield await task
