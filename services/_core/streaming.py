"""Run blocking backend work in a thread and stream its progress as it happens (and stop it when
the caller goes away); prefetch the items of a blocking iterator on a worker thread."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, TypeVar

from kantoku.v1 import common_pb2

T = TypeVar("T")


class WorkCancelled(Exception):  # noqa: N818 - it is not an error, the caller left
    """Raised in the backend's thread, at its next progress call, once the caller has left."""


async def run_with_progress(work: Callable[..., Any], *args: Any) -> AsyncIterator[Any]:
    """Yield common_pb2.Progress events while `work(*args, progress)` runs, then its result.

    `work` gets a `progress(stage, step, total_steps)` callback as its last argument, which
    backends call between frames and denoising steps. When the stream is closed early (the RPC
    was cancelled, its deadline passed or the server is stopping) the next call raises
    WorkCancelled in the worker thread, so the backend stops instead of burning CPU on an answer
    nobody will read.
    """
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[common_pb2.Progress | None] = asyncio.Queue()
    cancelled = threading.Event()

    def progress(stage: str, step: int, total: int) -> None:
        if cancelled.is_set():
            raise WorkCancelled(stage)
        if total > 100 and step % (total // 100) and step != total:
            return  # about a hundred events per stage is plenty
        event = common_pb2.Progress(stage=stage, step=step, total_steps=total)
        loop.call_soon_threadsafe(events.put_nowait, event)

    def run() -> Any:
        try:
            return work(*args, progress)
        finally:
            loop.call_soon_threadsafe(events.put_nowait, None)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    task.add_done_callback(_consume)
    try:
        while (event := await events.get()) is not None:
            yield event
        yield await task
    finally:
        cancelled.set()


def _consume(task: asyncio.Future[Any]) -> None:
    # A cancelled job's WorkCancelled has no reader; take it so asyncio does not log it.
    if not task.cancelled():
        task.exception()


def prefetch(items: Iterator[T], depth: int = 4) -> Generator[T, None, None]:
    """The same items in the same order, produced on a worker thread up to `depth` ahead, so
    producing overlaps consuming (e.g. drawing or decoding frames while the encoder works;
    OpenCV and PyAV release the GIL). Errors are raised again in the consumer."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(kind: str, item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put((kind, item), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer is gone

    def draw() -> None:
        try:
            for item in items:
                if not hand("item", item):
                    return
            hand("end", None)
        except BaseException as error:  # raised again in the consumer
            hand("error", error)

    worker = threading.Thread(target=draw, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
