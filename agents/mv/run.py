"""`kantoku mv`, `plan`, `resume`: run a music video's job graph with progress and a review."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from kantoku.agents.mv.progress import ProgressView, progress_bars
from kantoku.agents.services import job_services
from kantoku.planner.cache import RenderCache
from kantoku.planner.claims import claim_folder, hold_folder, hold_job
from kantoku.planner.context import Event, JobContext
from kantoku.planner.finish.loudness import DEFAULT_TARGET_LUFS, check_target
from kantoku.planner.finish.steps import LYRICS_BURN, LYRICS_MODES
from kantoku.planner.jobs import (
    JobOutcome,
    Reviewer,
    new_job_id,
    open_checkpointer,
    run_graph,
    saved_job,
    write_job_file,
)
from kantoku.planner.planning.brief import Brief, load_brief, parse_brief
from kantoku.planner.planning.plan import Plan
from kantoku.planner.render import reference_images
from kantoku.planner.rights.ledger import open_ledger
from kantoku.services._core.assets import AssetStore
from kantoku.services._core.errors import Category, KantokuError, from_os_error, invalid
from kantoku.services._core.settings import core_settings


@dataclass(frozen=True)
class Delivery:
    """How the finished video is made for where it goes: `kantoku mv --loudness --lyrics-mode`."""

    loudness_lufs: float = DEFAULT_TARGET_LUFS
    lyrics_mode: str = LYRICS_BURN

    def check(self) -> None:
        """Raises INVALID_REQUEST naming the option when a value is not usable."""
        check_target(self.loudness_lufs, "--loudness")
        if self.lyrics_mode not in LYRICS_MODES:
            raise invalid(f"--lyrics-mode: {self.lyrics_mode!r} is not burn (drawn into the "
                          "picture) or soft (a subtitle track in video.mp4)",
                          reason="LYRICS_MODE_INVALID")


async def run_job(ctx_args: dict[str, Any], graph_input: Any, *, server: str | None,
                  console: Console, reviewer: Reviewer | None) -> tuple[JobOutcome, ProgressView]:
    with progress_bars(console) as progress:
        view = ProgressView(progress)
        if ctx_args.get("plan"):  # resuming after planning
            view.plan_ready(Plan.model_validate(ctx_args["plan"]))

        def on_event(event: Event) -> None:
            if event.get("event") == "plan_ready":
                view.plan_ready(Plan.model_validate(event["plan"]))
            view(event)

        outcome = await execute_job(ctx_args, graph_input, server=server, reviewer=reviewer,
                                    on_event=on_event)
        view.finish()
    return outcome, view


async def execute_job(ctx_args: dict[str, Any], graph_input: Any, *, server: str | None,
                      reviewer: Reviewer | None, on_event: Callable[[Event], None]
                      ) -> JobOutcome:
    """Run a job's graph on its services with the shared checkpointer, ledger and cache; every
    progress event goes to `on_event` (the console's bars, or the studio's event stream).

    Args:
        ctx_args: the job's state (a new job's first state, or the checkpointed one).
        graph_input: that state for a new job; None or a resume Command to go on.
        reviewer: decides the review; None pauses the job there.
    """
    settings = core_settings()
    store = AssetStore(settings.assets_dir)
    brief = Brief.model_validate(ctx_args["brief"])
    plan = ctx_args.get("plan")
    # Every planner speaks the brief's dialogue lines and no others.
    speech = bool(brief.dialogue) if plan is None else \
        any(shot["dialogue"] for shot in plan["shots"])
    async with job_services(server, speech) as client, open_checkpointer() as saver:
        # Before any work, so an unreachable ledger stops nothing midway; in a thread, since
        # connecting to a Postgres ledger may wait for the server.
        ledger = await asyncio.to_thread(open_ledger)
        ctx = JobContext(job_id=ctx_args["job_id"], out_dir=Path(ctx_args["out_dir"]),
                         client=client, store=store,
                         cache=RenderCache(settings.home_dir / "cache", store),
                         ledger=ledger,
                         references=reference_images(brief, store))
        try:
            return await run_graph(saver, ctx, graph_input, reviewer, on_event)
        except (KantokuError, OSError) as exc:
            err = exc if isinstance(exc, KantokuError) else from_os_error(
                exc, candidates=[ctx.out_dir, settings.home_dir])
            if err is None:
                raise
            if err.transient or err.category in (Category.INTERNAL,
                                                 Category.RESOURCE_EXHAUSTED):
                err.message += (f"\n  the job is saved; once that is fixed, run "
                                f"`kantoku resume {ctx.job_id}`")
            raise err from None
        finally:
            ledger.close()


def job_state(job_id: str, out: Path, brief: Brief, *, song: Path | None, lyrics: Path | None,
              planner: str, yes: bool, delivery: Delivery) -> dict[str, Any]:
    """A new job's first graph state."""
    return {"job_id": job_id, "out_dir": str(out), "brief": brief.model_dump(mode="json"),
            "song": str(song.resolve()) if song else None,
            "lyrics": str(lyrics.resolve()) if lyrics else None,
            "planner": planner, "auto_approve": yes, "shots": {}, "notes": [],
            "loudness_lufs": delivery.loudness_lufs, "lyrics_mode": delivery.lyrics_mode}


async def start_mv(brief_path: Path, out: Path, *, song: Path | None, lyrics: Path | None,
                   planner: str, yes: bool, server: str | None, console: Console,
                   reviewer: Reviewer | None, overrides: dict[str, Any] | None = None,
                   delivery: Delivery = Delivery()) -> tuple[JobOutcome, ProgressView]:
    delivery.check()
    brief = load_brief(brief_path)
    if overrides:  # command-line options win over the brief, checked by the same rules
        brief = parse_brief({**brief.model_dump(mode="json"), **overrides}, "command-line options")
    for flag, path in (("--song", song), ("--lyrics", lyrics)):
        if path is not None and not path.is_file():
            raise invalid(f"{flag}: {path} is not a file", reason="FILE_NOT_FOUND")
    job_id = new_job_id()
    out = out.resolve()
    state = job_state(job_id, out, brief, song=song, lyrics=lyrics, planner=planner, yes=yes,
                      delivery=delivery)
    # One job per folder: a new job needs a new or empty one, and one process at a time.
    with hold_job(job_id), hold_folder(out, job_id):
        claim_folder(out, job_id)
        # job.json is handed on with the video: names, never this machine's paths. What resume
        # needs (the output folder, the song's path) lives in the job's checkpointed state.
        write_job_file(out, job_id, "created", brief=brief_path.name, title=brief.title,
                       resume=f"kantoku resume {job_id}")
        return await run_job(state, state, server=server, console=console,
                             reviewer=None if yes else reviewer)


async def resume_mv(job_id: str, *, yes: bool, server: str | None, console: Console,
                    reviewer: Reviewer | None) -> tuple[JobOutcome, ProgressView]:
    """Run job `job_id` on from its last checkpoint, in this process only.

    Raises:
        KantokuError: UNAVAILABLE (JOB_RUNNING, FOLDER_IN_USE) when another process runs the
            job or writes into its folder; INVALID_REQUEST (FOLDER_TAKEN) when the folder now
            holds another job; NOT_FOUND for an unknown job.
    """
    with hold_job(job_id):
        async with open_checkpointer() as saver:
            state, waiting = await saved_job(saver, job_id)
        out = Path(state["out_dir"])
        with hold_folder(out, job_id):
            claim_folder(out, job_id, todo=f"{job_id} was replaced there and cannot be resumed")
            return await _resume(job_id, state, waiting, yes=yes, server=server,
                                 console=console, reviewer=reviewer)


async def _resume(job_id: str, state: dict[str, Any], waiting: bool, *, yes: bool,
                  server: str | None, console: Console, reviewer: Reviewer | None
                  ) -> tuple[JobOutcome, ProgressView]:
    from langgraph.types import Command

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


async def plan_document(brief_path: Path, planner: str, song: Path | None = None,
                        lyrics: Path | None = None, on_event: Callable[[Event], None] | None = None
                        ) -> tuple[dict[str, Any], str]:
    """`kantoku plan`: the plan for a brief (and song), without rendering anything, and the
    line saying how it was made."""
    from kantoku.planner.graph import make_plan
    from kantoku.planner.music import steps as music

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
    started = time.perf_counter()
    plan, result = await make_plan(brief, duration, document, planner, on_event)
    summary = result.report.summary() if result is not None else \
        f"plan: heuristic planner, {time.perf_counter() - started:.1f} s"
    return plan.model_dump(mode="json"), summary
