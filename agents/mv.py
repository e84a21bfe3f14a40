"""`kantoku mv`, `plan`, `resume`: run a job's graph with rich progress and a plan review.

Services come from `--server`, else the local stack (`kantoku up`), else an embedded gRPC server
that this process starts on a free loopback port for the job and stops afterwards.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from kantoku.agents.client import ServiceClient, stack_file
from kantoku.planner.brief import Brief, load_brief, parse_brief
from kantoku.planner.cache import RenderCache
from kantoku.planner.context import Event, JobContext
from kantoku.planner.jobs import (
    JobOutcome,
    Reviewer,
    new_job_id,
    open_checkpointer,
    run_graph,
    saved_job,
    write_job_file,
)
from kantoku.planner.plan import Plan
from kantoku.planner.rights.ledger import Ledger
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import Category, KantokuError, invalid
from kantoku.services._core.server import ServiceBinding, start_server
from kantoku.services._core.settings import core_settings
from kantoku.services.catalog import SERVICES
from kantoku.v1 import common_pb2, image_pb2

#: The stages the top progress bar counts (song analysis only in music videos).
STAGES = ("intake", "analyse song", "plan", "policy", "render", "assemble", "sign", "report")


@asynccontextmanager
async def job_services(server: str | None, speech: bool = True) -> AsyncIterator[ServiceClient]:
    """A client for `--server`, the local stack, or an embedded server started for this job
    (with the speech services only when the job has dialogue: loading voices takes seconds)."""
    settings = core_settings()
    if server or stack_file(settings).exists():
        from kantoku.agents.client import resolve_server

        async with ServiceClient(resolve_server(server, settings), settings.token,
                                 timeout_s=3600) as client:
            yield client
        return
    names = ["image", "video", *(["tts", "motion"] if speech else [])]
    bindings = [ServiceBinding(SERVICES[n].build(), SERVICES[n].add_function(),
                               SERVICES[n].full_name) for n in names]
    running = await start_server(bindings, port=0)
    try:
        async with ServiceClient(running.address, settings.token, timeout_s=3600) as client:
            yield client
    finally:
        await running.stop()


def reference_images(brief: Brief, store: AssetStore) -> list[image_pb2.ReferenceImage]:
    """Characters' reference pictures, put into the store with their holder and license."""
    references = []
    for index, character in enumerate(brief.characters):
        ref = character.reference
        if ref is None:
            continue
        if not ref.path.is_file():
            raise invalid(f"characters[{index}].reference.path: {ref.path} is not a file",
                          reason="FILE_NOT_FOUND")
        asset = store.put_file(ref.path)
        asset.rights.CopyFrom(common_pb2.RightsInfo(license=ref.license,
                                                    rights_holder=ref.holder))
        references.append(image_pb2.ReferenceImage(image=asset, character_name=character.name))
    return references


@dataclass
class ProgressView:
    """Rich progress bars: one per stage, one per shot (steps done of steps planned)."""

    progress: Progress
    stage_times: dict[str, float] = field(default_factory=dict)
    shot_tasks: dict[str, TaskID] = field(default_factory=dict)
    cache_hits: int = 0
    steps: int = 0
    _stage: str = ""
    _stage_started: float = field(default_factory=time.perf_counter)
    _render_task: TaskID | None = None
    _stage_task: TaskID | None = None

    def plan_ready(self, plan: Plan) -> None:
        self._render_task = self.progress.add_task("render shots", total=len(plan.shots))
        for shot in plan.shots:
            total = 2 + 2 * len(shot.dialogue)
            self.shot_tasks[shot.id] = self.progress.add_task(
                f"  {shot.id} {shot.shot_size.replace('_', ' ')}", total=total, visible=False)

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "stage":
            self._enter(event["stage"])
        elif kind == "step" and event.get("shot_id") in self.shot_tasks:
            task = self.shot_tasks[event["shot_id"]]
            self._enter("render")
            self.progress.update(task, visible=True)
            if event["state"] == "done":
                self.steps += 1
                self.cache_hits += bool(event.get("cache_hit"))
                self.progress.advance(task)
        elif kind == "shot_done" and self._render_task is not None:
            self.progress.advance(self._render_task)
            self.progress.update(self.shot_tasks[event["shot_id"]], visible=False)
        elif kind == "assemble_progress":
            self.progress.update(self._assemble_task(), completed=event["done"],
                                 total=event["total"])

    def _assemble_task(self) -> TaskID:
        if "assemble" not in self.shot_tasks:
            self.shot_tasks["assemble"] = self.progress.add_task("assemble frames", total=None)
        return self.shot_tasks["assemble"]

    def _enter(self, stage: str) -> None:
        stage = "render" if stage == "collect" else stage
        if stage == self._stage:
            return
        now = time.perf_counter()
        if self._stage:
            self.stage_times[self._stage] = self.stage_times.get(self._stage, 0.0) + \
                now - self._stage_started
        self._stage, self._stage_started = stage, now
        if self._stage_task is None:
            self._stage_task = self.progress.add_task("stage", total=len(STAGES))
        done = STAGES.index(stage) if stage in STAGES else len(STAGES)
        self.progress.update(self._stage_task, description=f"stage: {stage}", completed=done)

    def finish(self) -> None:
        self._enter("done")


def progress_bars(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)


def console_reviewer(console: Console, ask: Any) -> Reviewer:
    """Shows the plan as a table and asks for approval (`ask` is typer.confirm or a fake)."""
    async def review(payload: dict[str, Any]) -> Any:
        console.print(plan_table(Plan.model_validate(payload["plan"])))
        return bool(ask("Render this plan?", default=True))
    return review


def plan_table(plan: Plan) -> Table:
    table = Table("shot", "time", "size / move", "characters", "what happens",
                  title=f"{plan.title}: {len(plan.shots)} shots, {plan.duration_s:.1f} s "
                        f"({plan.planner})")
    for shot in plan.shots:
        said = "; ".join(f"{d.speaker}: {d.text}" for d in shot.dialogue)
        table.add_row(shot.id, f"{shot.start_s:5.1f}–{shot.end_s:5.1f}",
                      f"{shot.shot_size} / {shot.camera_move}", ", ".join(shot.characters),
                      " | ".join(p for p in (shot.description, *shot.lyrics, said) if p))
    return table


def summary_table(outcome: JobOutcome, view: ProgressView) -> Table:
    state = outcome.state
    verdict = (state.get("report") or {}).get("verdict", {})
    table = Table("", "", title=f"{outcome.job_id} → {outcome.out_dir}")
    table.add_row("shots", str(len(state.get("plan", {}).get("shots", []))))
    table.add_row("render steps", f"{view.steps} ({view.cache_hits} from cache)")
    for stage, seconds in view.stage_times.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    if verdict:
        table.add_row("publish", "yes" if verdict.get("publish") else "no")
        table.add_row("monetize", "yes" if verdict.get("monetize") else "no")
    for note in state.get("notes", [])[:10]:
        table.add_row("note", note)
    return table


async def run_job(ctx_args: dict[str, Any], graph_input: Any, *, server: str | None,
                  console: Console, reviewer: Reviewer | None) -> tuple[JobOutcome, ProgressView]:
    settings = core_settings()
    store = AssetStore(settings.assets_dir)
    with progress_bars(console) as progress:
        view = ProgressView(progress)
        brief = Brief.model_validate(ctx_args["brief"])
        if ctx_args.get("plan"):  # resuming after planning
            view.plan_ready(Plan.model_validate(ctx_args["plan"]))

        def on_event(event: Event) -> None:
            if event.get("event") == "plan_ready":
                view.plan_ready(Plan.model_validate(event["plan"]))
            view(event)

        plan = ctx_args.get("plan")
        # An LLM may write dialogue the brief did not have; heuristic plans speak the brief's.
        speech = (bool(brief.dialogue) or ctx_args.get("planner") == "llm") if plan is None \
            else any(shot["dialogue"] for shot in plan["shots"])
        async with job_services(server, speech) as client, open_checkpointer() as saver:
            ctx = JobContext(job_id=ctx_args["job_id"], out_dir=Path(ctx_args["out_dir"]),
                             client=client, store=store,
                             cache=RenderCache(settings.home_dir / "cache", store),
                             ledger=Ledger(settings.home_dir / "ledger.sqlite"),
                             references=reference_images(brief, store))
            try:
                outcome = await run_graph(saver, ctx, graph_input, reviewer, on_event)
            except KantokuError as exc:
                if exc.transient or exc.category is Category.INTERNAL:
                    exc.message += (f"\n  the job is saved; once that is fixed, run "
                                    f"`kantoku resume {ctx.job_id}`")
                raise
        view.finish()
    return outcome, view


async def start_mv(brief_path: Path, out: Path, *, song: Path | None, lyrics: Path | None,
                   planner: str, yes: bool, server: str | None, console: Console,
                   reviewer: Reviewer | None, overrides: dict[str, Any] | None = None
                   ) -> tuple[JobOutcome, ProgressView]:
    brief = load_brief(brief_path)
    if overrides:  # command-line options win over the brief, checked by the same rules
        brief = parse_brief({**brief.model_dump(mode="json"), **overrides}, "command-line options")
    for flag, path in (("--song", song), ("--lyrics", lyrics)):
        if path is not None and not path.is_file():
            raise invalid(f"{flag}: {path} is not a file", reason="FILE_NOT_FOUND")
    job_id = new_job_id()
    out = out.resolve()
    write_job_file(out, job_id, "created", brief=str(brief_path.resolve()),
                   out_dir=str(out), resume=f"kantoku resume {job_id}")
    state = {"job_id": job_id, "out_dir": str(out), "brief": brief.model_dump(mode="json"),
             "song": str(song.resolve()) if song else None,
             "lyrics": str(lyrics.resolve()) if lyrics else None,
             "planner": planner, "auto_approve": yes, "shots": {}, "notes": []}
    return await run_job(state, state, server=server, console=console,
                         reviewer=None if yes else reviewer)


async def resume_mv(job_id: str, *, yes: bool, server: str | None, console: Console,
                    reviewer: Reviewer | None) -> tuple[JobOutcome, ProgressView]:
    from langgraph.types import Command

    async with open_checkpointer() as saver:
        state, waiting = await saved_job(saver, job_id)
    graph_input: Any = None
    if waiting:
        if yes:
            graph_input = Command(resume=True)
        elif reviewer is None:
            raise KantokuError(f"{job_id} waits for its plan review; resume with --yes to "
                               "approve it", "REVIEW_PENDING")
        else:
            graph_input = Command(resume=await reviewer({"plan": state["plan"]}))
    return await run_job(state, graph_input, server=server, console=console, reviewer=reviewer)


def print_outcome(outcome: JobOutcome, view: ProgressView, console: Console) -> None:
    write_job_file(outcome.out_dir, outcome.job_id, "awaiting_review" if outcome.paused else
                   "done", timings_s={k: round(v, 3) for k, v in view.stage_times.items()},
                   render_steps=view.steps, cache_hits=view.cache_hits)
    if outcome.paused:
        console.print(f"{outcome.job_id} waits for its plan review: "
                      f"`kantoku resume {outcome.job_id}` (add --yes to approve)")
        return
    console.print(summary_table(outcome, view))
    files = sorted(p.name for p in outcome.out_dir.iterdir() if p.is_file())
    console.print(f"wrote {outcome.out_dir}/: {', '.join(files)}")


async def plan_document(brief_path: Path, planner: str, song: Path | None = None,
                        lyrics: Path | None = None) -> dict[str, Any]:
    """`kantoku plan`: the plan for a brief (and song), without rendering anything."""
    from kantoku.planner import music
    from kantoku.planner.graph import make_plan

    brief = load_brief(brief_path)
    document: dict[str, Any] = {}
    if song is not None:
        document = await music.read_song(song, lyrics, brief)
        duration = float(document["analysis"]["duration_s"])
    elif brief.duration_s is None:
        raise invalid("duration_s: required when there is no song; add it to the brief or pass "
                      "--song", reason="DURATION_MISSING")
    else:
        duration = brief.duration_s
    plan, _ = await make_plan(brief, duration, document, planner)
    return plan.model_dump(mode="json")


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
