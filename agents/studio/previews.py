"""Storyboard previews: each shot's previz keyframe, drawn in the studio process while its plan
awaits review, so a person sees the shots before any compute is spent on them.

The previz backend is cheap and needs no service: it runs in a worker thread, one shot at a
time, first shot first. A preview is named by the shot and a fingerprint of the keyframe
request it draws (`<shot>-<fingerprint>.png` under the studio's `previews/<job>/`), so a
preview never outlives the plan it shows: after an edit only the shots whose picture changed
(`diff_plans`) are drawn again, and one whose fingerprint is already there is not drawn at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from kantoku.planner.planning.plan import Plan
from kantoku.planner.render import image_request
from kantoku.services._core.files import write_bytes_atomic
from kantoku.services._core.registry import ModelRegistry
from kantoku.services.image.backend import ImageJob
from kantoku.services.image.backends.previz import MODEL_ID, PrevizBackend
from kantoku.services.image.servicer import shot_of
from kantoku.v1 import image_pb2

if TYPE_CHECKING:
    from kantoku.agents.studio.jobs import StudioJob

log = logging.getLogger(__name__)


def preview_requests(job: StudioJob) -> dict[str, image_pb2.GenerateImageRequest]:
    """The keyframe request of every shot of the job's current plan, by shot id."""
    if job.plan is None:
        return {}
    plan, brief = Plan.model_validate(job.plan), job.brief
    return {shot.id: image_request(shot, plan, brief, []) for shot in plan.shots}


def fingerprint(request: image_pb2.GenerateImageRequest) -> str:
    """Names what a preview shows: the renderer and every field of the keyframe request."""
    digest = hashlib.sha256(MODEL_ID.encode() + b"\0")
    digest.update(request.SerializeToString(deterministic=True))
    return digest.hexdigest()[:16]


class Previews:
    """The previews of every job of one studio, each job's drawn by its own worker task."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._backend: PrevizBackend | None = None
        self._pending: dict[str, set[str]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        #: One drawing at a time for the whole studio: previews must not slow its requests.
        self._lock = asyncio.Lock()

    def paths(self, job: StudioJob) -> dict[str, Path]:
        """Where the preview of each shot as the plan has it now is (or will be) kept."""
        return {shot_id: self.folder / job.id / f"{shot_id}-{fingerprint(request)}.png"
                for shot_id, request in preview_requests(job).items()}

    def url(self, job: StudioJob, shot_id: str, print_: str) -> str:
        return f"/v1/jobs/{job.id}/shots/{shot_id}/preview?v={print_}"

    def schedule(self, job: StudioJob, shot_ids: Iterable[str]) -> None:
        """Draw these shots of the job's current plan (again), in plan order, in the
        background; each lands as a `preview` event."""
        pending = self._pending.setdefault(job.id, set())
        pending.update(shot_ids)
        worker = self._workers.get(job.id)
        if pending and (worker is None or worker.done()):
            self._workers[job.id] = asyncio.create_task(self._work(job),
                                                        name=f"previews {job.id}")

    async def stop(self, job_id: str) -> None:
        """Draw nothing more for the job (it was approved or cancelled)."""
        self._pending.pop(job_id, None)
        worker = self._workers.pop(job_id, None)
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def close(self) -> None:
        for job_id in list(self._workers):
            await self.stop(job_id)

    async def _work(self, job: StudioJob) -> None:
        pending = self._pending.setdefault(job.id, set())
        while pending and job.plan is not None:
            order = [shot["id"] for shot in job.plan["shots"]]
            shot_id = min(pending, key=lambda s: order.index(s) if s in order else -1)
            pending.discard(shot_id)
            request = preview_requests(job).get(shot_id)
            if request is None:  # an edit removed the shot
                continue
            print_ = fingerprint(request)
            target = self.folder / job.id / f"{shot_id}-{print_}.png"
            if not target.is_file():
                try:
                    async with self._lock:
                        png = await asyncio.to_thread(self._draw, request)
                    write_bytes_atomic(target, png)
                except Exception:  # noqa: BLE001 - a preview is a courtesy: the job goes on
                    log.warning("preview of %s %s failed", job.id, shot_id, exc_info=True)
                    continue
                for older in target.parent.glob(f"{shot_id}-*.png"):
                    if older != target:
                        older.unlink(missing_ok=True)
            current = preview_requests(job).get(shot_id)
            if current is not None and fingerprint(current) == print_:
                job.add_event({"event": "preview", "shot_id": shot_id,
                               "plan_version": job.plan_version,
                               "url": self.url(job, shot_id, print_)})

    def warm_up(self) -> None:
        """Load the renderer and its font before the first plan (blocking: run it in a
        thread)."""
        self._draw(image_pb2.GenerateImageRequest(prompt="warm up", width_px=64, height_px=36,
                                                  shot=image_pb2.ShotSpec(caption="warm up")))

    def _draw(self, request: image_pb2.GenerateImageRequest) -> bytes:
        """The previz keyframe of `request` as PNG bytes (blocking: runs in a worker thread)."""
        if self._backend is None:
            self._backend = PrevizBackend(ModelRegistry())
        job = ImageJob(request.prompt, request.width_px, request.height_px, request.seed,
                       shot_of(request.shot))
        return self._backend.generate(job, lambda stage, step, total: None).png
