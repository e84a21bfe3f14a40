"""`kantoku edit`: a timeline changed in an editor becomes the next version of the video.

The edited timeline is read into a new plan, the difference is shown (which shots change,
which stay, how many render steps), and on approval the current outputs move to
`OUT/versions/vN/` (still readable, still verifiable) and a new job renders the new plan into
OUT: unchanged shots come from the render cache, changed ones are rendered, the video is
assembled, signed and reported again, and the new ledger starts with the edit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from kantoku.agents.mv.progress import ProgressView
from kantoku.agents.mv.run import run_job
from kantoku.planner.claims import JOB_FILE, folder_job, hold_folder, hold_job
from kantoku.planner.finish.steps import VERSIONS_DIR
from kantoku.planner.finish.timeline_import import plan_from_timeline, read_editor_timeline
from kantoku.planner.jobs import (
    JobOutcome,
    new_job_id,
    open_checkpointer,
    saved_job,
    write_job_file,
)
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.diff import PlanDiff, diff_plans
from kantoku.planner.planning.plan import Plan
from kantoku.planner.rights.ledger import chain_head, open_ledger
from kantoku.services._core.assets import sha256_file
from kantoku.services._core.errors import KantokuError, invalid, not_found


def diff_table(diff: PlanDiff) -> Table:
    table = Table("shot", "change", "renders", title=f"edit: {diff.summary()}")
    for change in diff.changes:
        table.add_row(change.shot_id, change.describe(),
                      ", ".join(change.renders) or "none (from the cache)")
    return table


def archive_version(out: Path) -> Path:
    """Move the current outputs into `out/versions/vN/` (N = the next number)."""
    versions = out / VERSIONS_DIR
    versions.mkdir(exist_ok=True)
    number = 1 + max((int(p.name[1:]) for p in versions.iterdir()
                      if p.name[:1] == "v" and p.name[1:].isdigit()), default=0)
    target = versions / f"v{number}"
    target.mkdir()
    for entry in sorted(out.iterdir()):
        if entry.name != VERSIONS_DIR:
            os.replace(entry, target / entry.name)
    return target


async def edit_mv(out: Path, timeline_path: Path, *, yes: bool, server: str | None,
                  console: Console, ask: Any | None
                  ) -> tuple[JobOutcome, ProgressView] | None:
    """Render the edit in `timeline_path` as a new version of the job in `out`.

    Returns None when nothing changed or the edit was not approved.

    Raises:
        KantokuError: NOT_FOUND when `out` holds no finished job; INVALID_REQUEST for a
            timeline that cannot become a plan (the message names the clip and the rule).
    """
    out = out.resolve()
    parent = folder_job(out)
    if parent is None:
        raise not_found(f"{out}: no job.json; pass the output folder of a finished job",
                        reason="JOB_NOT_FOUND")
    # The folder's job is replaced by the new version: nobody else may run it or write there.
    with hold_job(parent), hold_folder(out, parent):
        return await _edit(out, timeline_path, yes=yes, server=server, console=console, ask=ask)


async def _edit(out: Path, timeline_path: Path, *, yes: bool, server: str | None,
                console: Console, ask: Any | None) -> tuple[JobOutcome, ProgressView] | None:
    job = json.loads((out / JOB_FILE).read_text())
    if job.get("status") != "done":
        raise invalid(f"{job['job_id']} is {job.get('status')}; finish it first with "
                      f"`kantoku resume {job['job_id']}`", reason="JOB_NOT_DONE")
    async with open_checkpointer() as saver:
        state, _ = await saved_job(saver, job["job_id"])
    previous = Plan.model_validate(state["plan"])
    brief = Brief.model_validate(state["brief"])
    edited = plan_from_timeline(read_editor_timeline(timeline_path, previous.fps), previous,
                                {c.name for c in brief.characters})
    diff = diff_plans(previous, edited.plan, edited.source_ids)
    console.print(diff_table(diff))
    for note in edited.notes:
        console.print(f"note: {note}")
    if not diff.changed:
        console.print("the timeline changes nothing; no new version")
        return None
    if not yes:
        if ask is None:
            raise KantokuError("the edit waits for approval; run again with --yes to render "
                               "it", "REVIEW_PENDING")
        if not ask("Render this edit?", default=True):
            return None
    new_state, _ = next_version(out, job["job_id"], state, edited.plan, diff,
                                notes=edited.notes, timeline=timeline_path.name,
                                timeline_sha256=sha256_file(timeline_path))
    with hold_job(new_state["job_id"]):
        return await run_job(new_state, new_state, server=server, console=console,
                             reviewer=None)


def next_version(out: Path, parent_job: str, state: dict[str, Any], plan: Plan, diff: PlanDiff,
                 **about: Any) -> tuple[dict[str, Any], Path]:
    """Make `plan` the next version of the finished job `parent_job` in `out`: its outputs move
    to `out/versions/vN/`, and a new job (id, job.json) takes the folder. The caller holds the
    parent job and its folder, and runs the returned state.

    Args:
        state: the parent job's checkpointed state.
        plan: the edited plan to render; the diff from the parent's plan.
        about: what made the edit, kept in the ledger's `edit` record (timeline, notes, ...).

    Returns:
        The new job's first graph state (auto-approved, the edit in it, the song as analysed),
        and the folder the parent's outputs moved to.
    """
    with open_ledger() as ledger:
        parent_head = chain_head(ledger.entries(parent_job))
    edit: dict[str, Any] = {
        "plan": plan.model_dump(mode="json"), "parent_job": parent_job,
        # From the ledger store, not from the folder's copy a user can edit.
        "parent_ledger_head": parent_head,
        "notes": [], **about, "diff": [vars(change) for change in diff.changes]}
    archived = archive_version(out)
    job_id = new_job_id()
    delivery: dict[str, Any] = {k: state[k] for k in ("loudness_lufs", "lyrics_mode")
                                if k in state}
    new_state: dict[str, Any] = {
        "job_id": job_id, "out_dir": str(out), "brief": state["brief"],
        "song": state.get("song"), "lyrics": state.get("lyrics"),
        "planner": state.get("planner", "heuristic"), "auto_approve": True, "edit": edit,
        "song_analysis": state.get("song_analysis") or {}, "shots": {}, "notes": [], **delivery}
    write_job_file(out, job_id, "created", parent_job=parent_job,
                   previous_version=str(archived.relative_to(out)),
                   resume=f"kantoku resume {job_id}")
    return new_state, archived
