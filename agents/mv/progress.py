"""The music video's progress on the console: a stage bar, a bar per shot, stage timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kantoku.planner.context import Event
from kantoku.planner.planning.plan import Plan

#: The stages the top progress bar counts (song analysis only in music videos).
STAGES = ("intake", "analyse song", "plan", "policy", "render", "assemble", "sign", "report")



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
    #: How the plan was made (the LLM planner's one-line report).
    planning: str = ""
    #: Shots rendering at once, as the services' capacity last set it.
    shots_in_flight: int | None = None
    _planning_task: TaskID | None = None

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
        elif kind in ("llm_batch", "llm_progress", "planning"):
            if kind == "planning":
                self.planning = event["summary"]
            if self._planning_task is None:
                self._planning_task = self.progress.add_task("LLM", total=None)
            self.progress.update(self._planning_task, description=planning_step(event),
                                 visible=kind != "planning")
        elif kind == "capacity":
            self.capacity(event)
        elif kind == "assemble_progress":
            self.progress.update(self._assemble_task(), completed=event["done"],
                                 total=event["total"])

    def capacity(self, event: Event) -> None:
        """Say how many shots render at once, and which replicas decided it."""
        self.shots_in_flight = event["shots_in_flight"]
        if self._render_task is not None:
            self.progress.update(self._render_task,
                                 description=f"render shots ({self.shots_in_flight} at once)")
        if event["deployments"]:
            self.progress.console.print(capacity_line(event))

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


def capacity_line(event: Event) -> str:
    """'shots in flight: 4 (image: 2 replicas x 1 request, video: 2 replicas x 1 request)'."""
    parts = []
    for d in event["deployments"]:
        scaling = f" (up to {d['max_replicas']})" if d.get("max_replicas") else ""
        requests = "request" if d["max_ongoing_requests"] == 1 else "requests"
        replicas = "replica" if d["running"] == 1 else "replicas"
        parts.append(f"{d['application']}: {d['running']} {replicas}{scaling} "
                     f"x {d['max_ongoing_requests']} {requests}")
    capped = ", capped by KANTOKU_MAX_PARALLEL_SHOTS" if event.get("capped") else ""
    return f"shots in flight: {event['shots_in_flight']} ({', '.join(parts)}{capped})"


def planning_step(event: Event) -> str:
    """What the LLM planner is doing, for a progress line."""
    if event["event"] == "llm_batch":
        return f"LLM: {event['label']}"
    if event["event"] == "llm_progress":
        return f"LLM: {event['purpose']}: {event['tokens']} tokens"
    return str(event.get("summary", "LLM"))


def planning_progress(progress: Progress) -> Callable[[Event], None]:
    """An event sink showing the LLM planner's batches and tokens on one progress line."""
    task = progress.add_task("planning", total=None)

    def show(event: Event) -> None:
        if event.get("event") in ("llm_batch", "llm_progress"):
            progress.update(task, description=planning_step(event))
    return show


def progress_bars(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=True)
