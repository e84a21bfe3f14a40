"""What the console shows of a job: the plan to review, and the outcome with its timings."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kantoku.agents.mv.progress import ProgressView
from kantoku.planner.jobs import JobOutcome, Reviewer, write_job_file
from kantoku.planner.planning.plan import Plan


def console_reviewer(console: Console, ask: Any) -> Reviewer:
    """Shows the plan as a table and asks for approval (`ask` is typer.confirm or a fake)."""
    async def review(payload: dict[str, Any]) -> Any:
        console.print(plan_table(Plan.model_validate(payload["plan"])))
        return bool(ask("Render this plan?", default=True))
    return review


def plan_table(plan: Plan) -> Table:
    """The plan as a table; the brief's and the lyrics' words are shown as written (a `[...]`
    in them is text, not rich markup)."""
    table = Table("shot", "time", "size / move", "characters", "what happens",
                  title=escape(f"{plan.title}: {len(plan.shots)} shots, {plan.duration_s:.1f} s "
                               f"({plan.planner})"))
    for shot in plan.shots:
        said = "; ".join(f"{d.speaker}: {d.text}" for d in shot.dialogue)
        cells = (shot.id, f"{shot.start_s:5.1f}–{shot.end_s:5.1f}",
                 f"{shot.shot_size} / {shot.camera_move}", ", ".join(shot.characters),
                 " | ".join(p for p in (shot.description, *shot.lyrics, said) if p))
        table.add_row(*(escape(cell) for cell in cells))
    return table


def summary_table(outcome: JobOutcome, view: ProgressView) -> Table:
    state = outcome.state
    verdict = (state.get("report") or {}).get("verdict", {})
    table = Table("", "", title=f"{outcome.job_id} → {outcome.out_dir}")
    table.add_row("shots", str(len(state.get("plan", {}).get("shots", []))))
    table.add_row("planner", escape(view.planning or str(state.get("plan", {}).get("planner"))))
    table.add_row("render steps", f"{view.steps} ({view.cache_hits} from cache)")
    if view.shots_in_flight is not None:
        table.add_row("shots at once", str(view.shots_in_flight))
    for stage, seconds in view.stage_times.items():
        table.add_row(f"time: {stage}", f"{seconds:.1f} s")
    if verdict:
        table.add_row("publish", "yes" if verdict.get("publish") else "no")
        table.add_row("monetize", "yes" if verdict.get("monetize") else "no")
    for note in state.get("notes", [])[:10]:
        table.add_row("note", escape(note))
    return table


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


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
