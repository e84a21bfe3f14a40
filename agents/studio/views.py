"""The studio API's request and response models (OpenAPI is generated from them); the
planner's own models (Brief, Plan) are used as they are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kantoku.agents.studio.jobs import StudioJob
from kantoku.planner.claims import folder_job
from kantoku.planner.finish.steps import VERSIONS_DIR
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan


class CreateJob(BaseModel):
    brief: dict[str, Any] = Field(description="the brief's fields (see Brief)")
    planner: Literal["heuristic", "llm"] = "heuristic"


class SessionRequest(BaseModel):
    token: str = Field(min_length=1, max_length=4096, description="KANTOKU_AUTH_TOKEN")


class OutputFile(BaseModel):
    name: str
    bytes: int


class JobView(BaseModel):
    id: str
    status: str
    created: str
    title: str
    brief: Brief
    plan: Plan | None = None
    plan_version: int = 0
    policy: dict[str, Any] | None = Field(default=None, description="the policy gate's report")
    verdict: dict[str, Any] | None = Field(default=None, description="publish/monetize verdict")
    outputs: list[OutputFile] = Field(default_factory=list)
    timings_s: dict[str, float] = Field(default_factory=dict,
                                        description="seconds per stage of the latest run")
    error: dict[str, Any] | None = None
    events: int = Field(default=0, description="events so far (the last event id)")
    newest_version: str | None = Field(
        default=None, description="for an earlier version (a shot was regenerated since): the "
        "job that holds the folder now")


class ShotChangeView(BaseModel):
    shot_id: str
    status: str
    fields: list[str]
    renders: list[str]


class DiffView(BaseModel):
    changes: list[ShotChangeView]
    stale: list[str] = Field(description="shots that must render again")
    render_steps: int
    summary: str


class SnapView(BaseModel):
    field: str = Field(description="the cut asked for: start_s or end_s")
    asked_s: float
    cut_s: float = Field(description="where the cut went: the nearest beat, on the frame grid")


class PlanView(BaseModel):
    version: int
    plan: Plan
    diff: DiffView | None = None
    snapped: SnapView | None = Field(default=None, description="where a moved cut snapped")


class SectionView(BaseModel):
    name: str
    start_s: float
    end_s: float


class LyricView(BaseModel):
    start_s: float
    end_s: float
    text: str


class WaveformView(BaseModel):
    peaks: list[float] = Field(description="the largest |sample| per window, 0..1")
    seconds_per_peak: float


class TimelineView(BaseModel):
    duration_s: float
    fps: int
    beats_s: list[float]
    downbeats_s: list[float]
    sections: list[SectionView]
    lyrics: list[LyricView]
    waveform: WaveformView | None = Field(description="None without a song")


class Regenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(default=None, ge=0, lt=2**63,
                             description="the shot's new seed (default: a new random one)")
    image_prompt: str | None = Field(default=None, max_length=2000)


class Problem(BaseModel):
    shot: str | None
    field: str | None
    rule: str


class ErrorView(BaseModel):
    detail: str
    reason: str
    problems: list[Problem] | None = None


def job_view(job: StudioJob) -> JobView:
    brief = job.brief
    report = job.report or {}
    return JobView(id=job.id, status=job.status, created=job.created, title=brief.title,
                   brief=brief, plan=Plan.model_validate(job.plan) if job.plan else None,
                   plan_version=job.plan_version, policy=job.policy,
                   verdict=report.get("verdict") if isinstance(report, dict) else None,
                   outputs=[OutputFile(**o) for o in job.outputs()],
                   timings_s=job.timings_s, error=job.error, events=len(job.events),
                   newest_version=newest_version(job))


def newest_version(job: StudioJob) -> str | None:
    """The job in the folder an earlier version was moved out of (`versions/vN/`)."""
    if job.folder.parent.name != VERSIONS_DIR:
        return None
    return folder_job(job.folder.parent.parent)
