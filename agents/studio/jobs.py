"""The studio's jobs: each runs its graph in a background task and stops at review until a
person approves its plan (as it is, or edited here); its events are kept for every subscriber.

A job's folder is `$KANTOKU_HOME/studio/jobs/<id>/`; its uploads sit in
`$KANTOKU_HOME/studio/uploads/<id>/`, its edited plan in `drafts/<id>.json` and its storyboard
previews in `previews/<id>/`. A shot regenerated on a finished job makes a new job (a new id)
in the same folder, as `kantoku edit` does: the earlier outputs move to `versions/vN/`. The
checkpointer, ledger and render cache are the ones `kantoku mv` uses, so `kantoku resume <id>`
can finish a studio job too, and a studio started again finds its jobs where they stood: a job
it stopped while running goes on from its last checkpoint by itself (`:resume` runs a failed
one on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kantoku.agents.mv.edit import next_version
from kantoku.agents.mv.run import Delivery, execute_job, job_state
from kantoku.agents.studio.cuts import CUT_FIELDS, CutRefused, move_cut
from kantoku.agents.studio.previews import Previews
from kantoku.planner.claims import JOB_FILE, claim_folder, folder_job, hold_folder, hold_job
from kantoku.planner.context import Event
from kantoku.planner.finish.steps import VERSIONS_DIR
from kantoku.planner.jobs import new_job_id, open_checkpointer, saved_job, write_job_file
from kantoku.planner.music.steps import analysis_of, with_lyrics
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.diff import PlanDiff, diff_plans
from kantoku.planner.planning.plan import Plan, plan_problems
from kantoku.services._core.errors import KantokuError
from kantoku.services._core.files import write_text_atomic

log = logging.getLogger(__name__)

#: Statuses after which nothing more happens to a job.
FINISHED = frozenset({"done", "failed", "cancelled"})
#: Statuses a job can be resumed from (`:resume`): stopped with the studio, or failed.
RESUMABLE = frozenset({"interrupted", "failed"})
#: Shot fields a PATCH may not change (the id names the shot).
FIXED_FIELDS = frozenset({"id"})

_PROBLEM = re.compile(r"^shots\[(\d+)\] \((\w+)\)(?:\.(\w+))?: (.+)$")


class PlanRefused(Exception):
    """An edited plan that breaks a rule; each problem names the shot, the field and the rule."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        super().__init__("; ".join(describe(p) for p in problems))


class JobStateError(Exception):
    """The request does not fit what the job is doing now (409)."""


def describe(problem: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in (problem.get("shot"), problem.get("field")) if p)
    return f"{where}: {problem['rule']}" if where else str(problem["rule"])


def plan_refusals(plan: Plan, characters: set[str]) -> list[dict[str, Any]]:
    """`plan_problems` as {shot, field, rule}."""
    refusals = []
    for text in plan_problems(plan, characters):
        match = _PROBLEM.match(text)
        if match is None:
            refusals.append({"shot": None, "field": "shots", "rule": text.removeprefix("shots: ")})
            continue
        _, shot_id, name, rule = match.groups()
        refusals.append({"shot": shot_id,
                         "field": name or ("start_s" if rule.startswith("starts at") else "end_s"),
                         "rule": rule})
    return refusals


def validation_refusals(exc: ValidationError, document: dict[str, Any]) -> list[dict[str, Any]]:
    """A plan's pydantic errors as {shot, field, rule}."""
    found_shots = document.get("shots")
    shots: list[Any] = found_shots if isinstance(found_shots, list) else []
    refusals = []
    for error in exc.errors():
        loc = list(error["loc"])
        shot = None
        if len(loc) >= 2 and loc[0] == "shots" and isinstance(loc[1], int):
            index = loc[1]
            found = shots[index] if index < len(shots) and isinstance(shots[index], dict) else {}
            shot = str(found.get("id") or f"shots[{index}]")
            loc = loc[2:]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        refusals.append({"shot": shot, "field": ".".join(str(p) for p in loc) or None,
                         "rule": message})
    return refusals


_PLAN_FIELD = re.compile(r"^plan\.shots\[(\d+)\]\.(.+)$")


def _where(field_name: str, plan: Plan) -> tuple[str | None, str]:
    """(shot id, field) for a policy field such as `plan.shots[0].dialogue[1].voice`."""
    match = _PLAN_FIELD.match(field_name)
    if match is None or int(match.group(1)) >= len(plan.shots):
        return None, field_name
    return plan.shots[int(match.group(1))].id, match.group(2)


def policy_refusals(job: StudioJob, plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rights policy on an edited plan (a line can name a voice): the refusals, and the
    report that replaces the job's when there are none."""
    from kantoku.planner.rights.policy import check_policy
    from kantoku.services._core.registry import ModelRegistry

    song = job.state.get("song")
    try:
        report = check_policy(job.brief, plan, ModelRegistry(), song=Path(song) if song else None)
    except KantokuError as exc:
        shot, name = _where(exc.metadata.get("field", ""), plan)
        rule = exc.message.split(": ", 1)[-1]
        return [{"shot": shot, "field": name or None, "rule": rule}], {}
    refusals = []
    for item in report.violations:
        for violation in item.violations:
            for field_name in item.fields or [""]:
                shot, name = _where(field_name, plan)
                refusals.append({"shot": shot, "field": name or None,
                                 "rule": f"the rights policy: {item.describe(violation)}"})
    return refusals, report.model_dump(mode="json")


def diff_document(diff: PlanDiff) -> dict[str, Any]:
    return {"changes": [{"shot_id": c.shot_id, "status": c.status, "fields": c.fields,
                         "renders": c.renders} for c in diff.changed],
            "stale": [c.shot_id for c in diff.changes if c.renders],
            "render_steps": diff.render_steps, "summary": diff.summary()}


@dataclass
class StudioJob:
    id: str
    folder: Path
    #: The graph state a run starts from: the first one, then the one it paused with.
    state: dict[str, Any]
    status: str = "created"
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    plan: dict[str, Any] | None = None
    plan_version: int = 0
    policy: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    #: Seconds per stage (intake, plan, policy, ..., report) of this run so far.
    timings_s: dict[str, float] = field(default_factory=dict)
    _stage: tuple[str, float] | None = None
    _signal: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def brief(self) -> Brief:
        return Brief.model_validate(self.state["brief"])

    def add_event(self, event: Event) -> None:
        """Keep `event` with the next id and wake every subscriber."""
        self.events.append({"id": len(self.events) + 1, "event": str(event.get("event", "message")),
                            "data": event})
        self._signal.set()
        self._signal = asyncio.Event()

    def time_stage(self, stage: str | None) -> None:
        """Close the running stage's clock and start `stage`'s (None: the run ended)."""
        now = time.perf_counter()
        if self._stage is not None:
            name, started = self._stage
            self.timings_s[name] = round(self.timings_s.get(name, 0.0) + now - started, 3)
        self._stage = (stage, now) if stage else None

    def set_status(self, status: str, **extra: Any) -> None:
        self.status = status
        write_job_file(self.folder, self.id, status, **extra)
        self.add_event({"event": "status", "status": status, **extra})

    async def events_after(self, last_id: int) -> AsyncIterator[dict[str, Any]]:
        """Every event after `last_id`, then each new one, until the job is finished."""
        while True:
            signal = self._signal
            while last_id < len(self.events):
                yield self.events[last_id]
                last_id += 1
            if self.status in FINISHED:
                return
            await signal.wait()

    def outputs(self) -> list[dict[str, Any]]:
        """The job folder's files (top level, no links, no hidden or partial files)."""
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir()
                 if not p.name.startswith(".") and not p.is_symlink() and p.is_file()]
        return [{"name": p.name, "bytes": p.stat().st_size} for p in sorted(files)]


class JobManager:
    """Jobs of one studio process, by id."""

    def __init__(self, root: Path, server: str | None) -> None:
        self.root = root
        self.server = server
        self.jobs: dict[str, StudioJob] = {}
        self.closing = False
        self.previews = Previews(root / "previews")
        self._background: set[asyncio.Task[None]] = set()
        #: Waveforms of the songs, by sha256 (the timeline strip's).
        self.waveforms = root / "waveforms"

    def _draft(self, job_id: str) -> Path:
        return self.root / "drafts" / f"{job_id}.json"

    async def warm_up(self) -> None:
        """Load what a new job's song analysis and storyboard need, in the background, so the
        first job of a studio shows its first preview as soon as later ones do."""
        from kantoku.planner.music.song import warm_up

        try:
            await asyncio.to_thread(warm_up)
            await asyncio.to_thread(self.previews.warm_up)
        except Exception:  # noqa: BLE001 - the first job loads them itself, and says what fails
            log.warning("studio warm-up failed", exc_info=True)

    async def restore(self) -> None:
        """Find the jobs of an earlier run of the studio, each as it stood."""
        jobs = self.root / "jobs"
        folders = sorted([*jobs.glob(f"*/{JOB_FILE}"), *jobs.glob(f"*/versions/v*/{JOB_FILE}")])
        if not folders:
            return
        async with open_checkpointer() as saver:
            for path in folders:
                job_id = folder_job(path.parent)
                if job_id is None or job_id in self.jobs:
                    continue
                try:
                    state, waiting = await saved_job(saver, job_id)
                    document = json.loads(path.read_text())
                except (KantokuError, OSError, ValueError):
                    log.warning("studio job %s has no saved state; left out", job_id)
                    continue
                self.jobs[job_id] = self._restored(job_id, path.parent.resolve(), state, waiting,
                                                   document)
        # Jobs this studio was running when it stopped go on from their last checkpoint:
        # finished steps are not run again (the checkpoint and the render cache hold them).
        for job in list(self.jobs.values()):
            if job.status == "interrupted":
                self.resume(job)

    def _restored(self, job_id: str, folder: Path, state: dict[str, Any], waiting: bool,
                  document: dict[str, Any]) -> StudioJob:
        status = str(document.get("status", ""))
        if status == "awaiting_review" and not waiting:
            status = "interrupted"  # approved, stopped before its first step ran
        elif status in ("running", "created"):
            status = "interrupted"
        job = StudioJob(job_id, folder, state, status=status,
                        created=str(document.get("created", "")), plan=state.get("plan"),
                        plan_version=1 if state.get("plan") else 0, policy=state.get("policy"),
                        report=state.get("report"))
        if status == "awaiting_review":
            try:
                draft = json.loads(self._draft(job_id).read_text())
                job.plan, job.plan_version = draft["plan"], int(draft["version"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        if status == "failed":
            job.error = {"message": document.get("error", ""),
                         "reason": document.get("reason", "")}
        if job.plan is not None:
            job.add_event({"event": "plan_ready", "plan": job.plan})
        job.add_event({"event": "status", "status": status})
        if status == "awaiting_review" and job.plan is not None:
            self.previews.schedule(job, [shot["id"] for shot in job.plan["shots"]])
        return job

    def new_id(self) -> str:
        return new_job_id()

    def uploads(self, job_id: str) -> Path:
        return self.root / "uploads" / job_id

    def get(self, job_id: str) -> StudioJob | None:
        return self.jobs.get(job_id)

    def start(self, job_id: str, brief: Brief, *, planner: str, song: Path | None = None,
              lyrics: Path | None = None, song_document: dict[str, Any] | None = None
              ) -> StudioJob:
        """Create the job, write its job.json and start its graph (it pauses at review)."""
        folder = (self.root / "jobs" / job_id).resolve()
        state = job_state(job_id, folder, brief, song=song, lyrics=lyrics, planner=planner,
                          yes=False, delivery=Delivery())
        if song_document is not None:
            state["song_analysis"] = song_document  # checked at upload; not analysed again
        job = StudioJob(job_id, folder, state)
        claim_folder(folder, job_id)
        write_job_file(folder, job_id, "created", title=brief.title,
                       resume=f"kantoku resume {job_id}")
        self.jobs[job_id] = job
        job.task = asyncio.create_task(self._run(job, state), name=f"studio {job_id}")
        return job

    def _on_event(self, job: StudioJob, event: Event) -> None:
        job.add_event(event)
        if event.get("event") == "stage":
            job.time_stage(str(event.get("stage")))
        if event.get("event") == "plan_ready" and not job.state.get("auto_approve"):
            # The storyboard starts as soon as there is a plan, before the policy gate.
            job.plan, job.plan_version = event["plan"], 1
            self.previews.schedule(job, [shot["id"] for shot in event["plan"]["shots"]])

    async def _run(self, job: StudioJob, graph_input: Any) -> None:
        if job.status != "running":
            job.set_status("running")
        try:
            with hold_job(job.id), hold_folder(job.folder, job.id):
                outcome = await execute_job(job.state, graph_input, server=self.server,
                                            reviewer=None,
                                            on_event=lambda event: self._on_event(job, event))
        except asyncio.CancelledError:
            if self.closing:  # the studio stops; the job is checkpointed
                job.set_status("interrupted", resume=f"kantoku resume {job.id}")
            else:
                job.set_status("cancelled")
            return
        except KantokuError as exc:
            job.error = {"message": exc.message, "reason": exc.reason}
            job.set_status("failed", error=exc.message, reason=exc.reason)
            return
        except Exception as exc:  # a bug: the job says so, the studio goes on
            log.exception("job %s failed", job.id)
            job.error = {"message": repr(exc), "reason": "INTERNAL"}
            job.set_status("failed", error=repr(exc))
            return
        finally:
            job.time_stage(None)
        job.state = outcome.state
        job.policy = outcome.state.get("policy")
        if outcome.paused:
            job.plan = outcome.state["plan"]
            job.plan_version = 1
            job.set_status("awaiting_review")
        else:
            job.plan = outcome.state.get("plan", job.plan)
            job.report = outcome.state.get("report")
            job.set_status("done", timings_s=job.timings_s)

    def _reviewing(self, job: StudioJob) -> dict[str, Any]:
        if job.status != "awaiting_review" or job.plan is None:
            raise JobStateError(f"{job.id} is {job.status}; its plan can be changed only while "
                                "it awaits review")
        return job.plan

    def edit_plan(self, job: StudioJob, document: Any) -> dict[str, Any]:
        """Make `document` the job's plan: checked, versioned, and diffed with the last one.

        Raises:
            PlanRefused: naming each shot, field and rule the plan breaks.
            JobStateError: when the job does not await review.
        """
        old = Plan.model_validate(self._reviewing(job))
        if not isinstance(document, dict):
            raise PlanRefused([{"shot": None, "field": "plan", "rule": "a plan is an object"}])
        try:
            plan = Plan.model_validate(document)
        except ValidationError as exc:
            raise PlanRefused(validation_refusals(exc, document)) from None
        refusals = plan_refusals(plan, {c.name for c in job.brief.characters})
        if refusals:
            raise PlanRefused(refusals)
        refusals, policy = policy_refusals(job, plan)
        if refusals:
            raise PlanRefused(refusals)
        job.policy = policy
        diff = diff_document(diff_plans(old, plan))
        job.plan = plan.model_dump(mode="json")
        job.plan_version += 1
        write_text_atomic(self._draft(job.id), json.dumps(
            {"version": job.plan_version, "plan": job.plan}, ensure_ascii=False))
        job.add_event({"event": "plan_edited", "version": job.plan_version,
                       "summary": diff["summary"], "stale": diff["stale"]})
        # A preview is named by what it draws: a shot whose picture changed has none yet.
        self.previews.schedule(job, [shot for shot, path in self.previews.paths(job).items()
                                     if not path.is_file()])
        return {"version": job.plan_version, "plan": job.plan, "diff": diff}

    def edit_shot(self, job: StudioJob, shot_id: str, changes: Any, *, snap: bool = True
                  ) -> dict[str, Any] | None:
        """Change some of one shot's fields; None when the plan has no such shot.

        A new `end_s` (`start_s`) moves the cut shared with the next (previous) shot, which
        follows; the cut snaps to the nearest beat of the song unless `snap` is False, and the
        answer's `snapped` says where it went.
        """
        plan = self._reviewing(job)
        if not isinstance(changes, dict):
            raise PlanRefused([{"shot": shot_id, "field": None,
                                "rule": "send an object of the fields to change"}])
        fixed = sorted(FIXED_FIELDS & set(changes))
        if fixed:
            raise PlanRefused([{"shot": shot_id, "field": name, "rule": "cannot be changed"}
                               for name in fixed])
        if all(shot["id"] != shot_id for shot in plan["shots"]):
            return None
        cuts = [name for name in CUT_FIELDS if name in changes]
        if len(cuts) > 1:
            raise PlanRefused([{"shot": shot_id, "field": "end_s", "rule": "move one cut per "
                                "request: send start_s or end_s, not both"}])
        shots, snapped = plan["shots"], None
        if cuts:
            analysis = analysis_of(job.state.get("song_analysis") or {})
            try:
                moved = move_cut(shots, shot_id, cuts[0], changes[cuts[0]], fps=plan["fps"],
                                 beats_s=analysis.beats_s if analysis else [], snap=snap)
            except CutRefused as exc:
                raise PlanRefused([exc.problem]) from None
            shots, snapped = moved.shots, moved.snapped
        others = {k: v for k, v in changes.items() if k not in CUT_FIELDS}
        edited = []
        for shot in shots:
            if shot["id"] == shot_id:
                # Fields a person set are no longer the planner's.
                sources = {k: v for k, v in shot.get("sources", {}).items() if k not in others}
                shot = {**shot, "sources": sources, **others}
            edited.append(shot)
        document = {**plan, "shots": edited}
        if cuts:
            document = self._lyrics_on_cut(job, document)
        return {**self.edit_plan(job, document), "snapped": snapped}

    def _lyrics_on_cut(self, job: StudioJob, document: dict[str, Any]) -> dict[str, Any]:
        """The lyric lines sung during each shot, after a cut moved."""
        song = job.state.get("song_analysis") or {}
        try:
            plan = Plan.model_validate(document)
        except ValidationError:  # edit_plan names what is wrong
            return document
        return with_lyrics(plan, song).model_dump(mode="json")

    def regenerate(self, job: StudioJob, shot_id: str, *, seed: int | None,
                   image_prompt: str | None) -> StudioJob | None:
        """Render one shot of a finished job again as the job's next version: with the given
        seed and/or image prompt, or a new seed when neither is given; None when the plan has
        no such shot.

        The earlier outputs move to `versions/vN/` and a new job takes the folder; the other
        shots come from the render cache, then the video is assembled, signed and reported.

        Raises:
            JobStateError: when the job is not done.
        """
        if job.status != "done" or job.plan is None:
            raise JobStateError(f"{job.id} is {job.status}; only a done job's shots can be "
                                "regenerated")
        if job.folder.parent.name == VERSIONS_DIR:
            raise JobStateError(f"{job.id} is an earlier version ({VERSIONS_DIR}/"
                                f"{job.folder.name}); regenerate the shot on the newest one")
        plan = Plan.model_validate(job.plan)
        shot = next((s for s in plan.shots if s.id == shot_id), None)
        if shot is None:
            return None
        if seed is None and image_prompt is None:  # nothing asked: another take
            seed = shot.seed
            while seed == shot.seed:
                seed = random.randrange(1, 2**31)
        if seed is not None:
            shot.seed = seed
        if image_prompt is not None:
            shot.image_prompt = image_prompt
        shot.sources = {k: v for k, v in shot.sources.items()
                        if k not in ("seed", "image_prompt")}
        diff = diff_plans(Plan.model_validate(job.plan), plan)
        with hold_job(job.id), hold_folder(job.folder, job.id):
            state, archived = next_version(job.folder, job.id, job.state, plan, diff,
                                           regenerated=shot_id)
        job.folder = archived.resolve()
        new = StudioJob(state["job_id"], Path(state["out_dir"]), state,
                        plan=plan.model_dump(mode="json"), plan_version=1)
        self.jobs[new.id] = new
        job.add_event({"event": "new_version", "job_id": new.id, "shot_id": shot_id})
        new.task = asyncio.create_task(self._run(new, state), name=f"studio {new.id}")
        return new

    def approve(self, job: StudioJob) -> None:
        """Resume the graph with the current plan (edited or not)."""
        from langgraph.types import Command

        plan = self._reviewing(job)
        answer: Any = {"plan": plan} if job.plan_version > 1 else True
        job.state = {**job.state, "plan": plan}
        job.set_status("running")
        # The render makes the real keyframes; the storyboard stops drawing.
        stopping = asyncio.create_task(self.previews.stop(job.id))
        self._background.add(stopping)
        stopping.add_done_callback(self._background.discard)
        job.task = asyncio.create_task(self._run(job, Command(resume=answer)),
                                       name=f"studio {job.id}")

    def resume(self, job: StudioJob) -> None:
        """Run an interrupted or failed job on from its last checkpoint."""
        if job.status not in RESUMABLE:
            raise JobStateError(f"{job.id} is {job.status}; only an interrupted or failed job "
                                "can be resumed")
        job.error = None
        job.set_status("running")
        job.task = asyncio.create_task(self._run(job, None), name=f"studio {job.id}")

    async def cancel(self, job: StudioJob) -> None:
        if job.status in FINISHED:
            raise JobStateError(f"{job.id} is already {job.status}")
        await self.previews.stop(job.id)
        task = job.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if job.status != "cancelled":
            job.set_status("cancelled")

    async def close(self) -> None:
        """Stop every running job (each is checkpointed; `kantoku resume` finishes it)."""
        self.closing = True
        await self.previews.close()
        for job in list(self.jobs.values()):
            if job.task is not None and not job.task.done():
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task
