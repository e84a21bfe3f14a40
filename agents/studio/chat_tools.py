"""The chat agent's tools: the studio's own job functions (`JobManager`), callable by an LLM.

Before a job exists the chat holds a draft brief; `update_brief` changes it (checked by the
brief's rules) and `start_job` starts a job from it, which plans and stops at review. The plan
is read and its shots edited with the same checks as `PATCH /v1/jobs/{id}/shots/{shot}`.

Every call is checked before it runs: an unknown tool, arguments that are not JSON or that do
not fit the tool come back to the model as an error it can read and explain, never as a
failure of the chat. The agent never approves a plan or spends compute: `propose` only emits a
proposal, which the page shows as a button that calls the API.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kantoku.agents.studio.jobs import (
    FINISHED,
    JobManager,
    JobStateError,
    PlanRefused,
    StudioJob,
    describe,
)
from kantoku.planner.planning.brief import (
    MAX_DURATION_S,
    MIN_DURATION_S,
    Brief,
    describe_errors,
    parse_brief,
)
from kantoku.planner.planning.exchange import CJK
from kantoku.planner.planning.plan import Plan
from kantoku.services._core.errors import KantokuError

#: A new chat's draft brief runs this long until the director says otherwise (no song yet).
DEFAULT_DURATION_S = 15.0
#: How long `start_job` waits for the plan before it answers "still planning".
PLAN_WAIT_S = 60.0
#: A tool's answer to the model is cut to this many characters (small models, small contexts).
MAX_RESULT_CHARS = 6000
#: Brief fields the chat may set (reference images need an upload, not a chat message).
BRIEF_FIELDS = tuple(name for name in Brief.model_fields if name != "song")
_TITLE_WORDS = 8
#: "10 seconds", "a 6-second video", "30 s", "15秒".
_SECONDS = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*-?\s*(?:sec(?:ond)?s?\b|s\b|秒)", re.IGNORECASE)

Emit = Callable[[str, dict[str, Any]], None]


class ToolError(Exception):
    """A tool call that was refused; its message (and problems) go back to the model."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass
class Workspace:
    """What the chat's tools act on: the studio's jobs, the draft brief and the chat's job."""

    jobs: JobManager
    draft: dict[str, Any]
    job_id: str | None = None
    language: str | None = None
    #: What this turn changed and proposed (each also emitted as an event).
    changes: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def job(self) -> StudioJob | None:
        return self.jobs.get(self.job_id) if self.job_id else None

    def require_job(self) -> StudioJob:
        job = self.job
        if job is None:
            raise ToolError("there is no job yet: fill the brief (update_brief), then start_job")
        return job


def new_draft(language: str | None) -> dict[str, Any]:
    draft: dict[str, Any] = {"duration_s": DEFAULT_DURATION_S}
    if language:
        draft["language"] = language
    return draft


def draft_of(job: StudioJob) -> dict[str, Any]:
    """A job's brief as the chat's draft (the brief a next job would start from)."""
    return {k: v for k, v in job.brief.model_dump(mode="json", exclude_defaults=True).items()
            if k in BRIEF_FIELDS}


def writes_japanese(text: str) -> bool:
    return len(CJK.findall(text)) >= 2


def title_from(text: str) -> str:
    """A short title from the director's words: the first sentence, cut to a few words."""
    first = re.split(r"(?<=[.!?。！？])\s*", text.strip(), maxsplit=1)[0] or text.strip()
    if writes_japanese(first):
        return re.split(r"[、，,]", first, maxsplit=1)[0][:24]
    words = first.split()
    title = " ".join(words[:_TITLE_WORDS]).rstrip(",;:.")
    return (title[:1].upper() + title[1:])[:200] or "Untitled"


def logline_draft(workspace: Workspace, text: str) -> dict[str, Any] | None:
    """The director's first message as the draft's logline (and its title when it has none,
    its length when it names one): the chat stays useful when the model made no change of its
    own. None when there is nothing to fill."""
    if workspace.draft.get("logline") or workspace.job_id is not None or not text.strip():
        return None
    fields: dict[str, Any] = {"logline": text.strip()[:2000]}
    if not workspace.draft.get("title"):
        fields["title"] = title_from(text)
    if "language" not in workspace.draft and writes_japanese(text):
        fields["language"] = "ja"
    seconds = _SECONDS.search(text)
    if seconds is not None and MIN_DURATION_S <= float(seconds.group(1)) <= MAX_DURATION_S:
        fields["duration_s"] = float(seconds.group(1))
    try:
        return _change_brief(workspace, fields, "the director's message became the brief's "
                             "logline")
    except ToolError:  # e.g. a control character: the director is told by the reply instead
        return None


# -- arguments ------------------------------------------------------------------------------


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(Args):
    pass


class StartJobArgs(Args):
    planner: Literal["heuristic", "llm"] = Field(
        default="heuristic", description="heuristic: the shot rules (a second); llm: an LLM "
        "fills the shots (slower)")


class EditShotArgs(Args):
    shot_id: str = Field(description="the shot's id, e.g. s001")
    changes: dict[str, Any] = Field(min_length=1, description="the shot fields to change and "
                                    "their new values, e.g. {\"camera_move\": \"dolly_in\"}")


class ProposeArgs(Args):
    action: Literal["approve", "regenerate"] = Field(
        description="approve: render the plan as it is; regenerate: render one shot of a "
        "finished job again")
    shot_id: str | None = Field(default=None, description="the shot to regenerate")
    summary: str = Field(default="", max_length=500, description="what the director would "
                         "approve or why the shot should render again, in one sentence")


_BRIEF_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "title": {"type": "string"},
        "logline": {"type": "string", "description": "what happens, in a sentence or two"},
        "duration_s": {"type": "number", "description": "length in seconds (1 to 600)"},
        "style": {"type": "string"},
        "mood": {"type": "string"},
        "language": {"type": "string", "description": "en or ja"},
        "aspect": {"type": "string", "enum": ["9:16", "16:9", "1:1"]},
        "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"]},
        "locations": {"type": "array", "items": {"type": "string"}},
        "characters": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                           "voice": {"type": "string"}}}},
        "dialogue": {"type": "array", "items": {
            "type": "object", "required": ["speaker", "text"],
            "properties": {"speaker": {"type": "string"}, "text": {"type": "string"}}}},
        "rights_policy": {"type": "object", "properties": {
            "use": {"type": "string", "enum": ["commercial", "non-commercial", "internal"]},
            "opt_in_training_data_only": {"type": "boolean"}}},
        "seed": {"type": "integer"},
        "fps": {"type": "integer"},
    },
}


def _schema(model: type[Args]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


# -- the tools -------------------------------------------------------------------------------


def get_brief(workspace: Workspace, _: NoArgs) -> dict[str, Any]:
    result: dict[str, Any] = {"brief": workspace.draft}
    job = workspace.job
    if job is not None:
        result["job_id"] = job.id
        result["note"] = (f"job {job.id} was started from this brief; a change here is for "
                          "the next start_job")
    return result


def update_brief(workspace: Workspace, fields: dict[str, Any]) -> dict[str, Any]:
    if not fields:
        raise ToolError("name the brief fields to change, e.g. {\"logline\": \"...\"}")
    unknown = sorted(set(fields) - set(BRIEF_FIELDS))
    if unknown:
        raise ToolError(f"{', '.join(unknown)}: not a brief field; the fields are "
                        f"{', '.join(BRIEF_FIELDS)}")
    for index, character in enumerate(fields.get("characters") or []):
        if isinstance(character, dict) and character.get("reference") is not None:
            raise ToolError(f"characters[{index}].reference: reference images cannot be set in "
                            "the chat; upload them with the job instead")
    change = _change_brief(workspace, fields, "the brief changed")
    result: dict[str, Any] = {"ok": True, "brief": workspace.draft}
    if change is None:
        result["note"] = "nothing changed: the brief already had these values"
    elif workspace.job_id is not None:
        result["note"] = (f"job {workspace.job_id} keeps the brief it started with; "
                          "start_job starts a new job from this one")
    return result


def _change_brief(workspace: Workspace, fields: dict[str, Any], why: str
                  ) -> dict[str, Any] | None:
    """Apply `fields` to the draft when the result is a valid brief; the change, or None."""
    draft = {**workspace.draft}
    for name, value in fields.items():
        if value is None:
            draft.pop(name, None)
        else:
            draft[name] = value
    try:
        # A draft may still lack its title; every other rule is the brief's own.
        parse_brief({"title": "untitled", **draft}, "brief")
    except KantokuError as exc:
        raise ToolError(exc.message) from None
    diff = [{"field": name, "from": workspace.draft.get(name), "to": draft.get(name)}
            for name in fields if workspace.draft.get(name) != draft.get(name)]
    if not diff:
        return None
    workspace.draft = draft
    change = {"kind": "brief", "summary": f"{why}: {', '.join(str(d['field']) for d in diff)}",
              "diff": diff}
    if workspace.job_id is not None:
        change["job_id"] = workspace.job_id
    workspace.changes.append(change)
    return change


async def start_job(workspace: Workspace, args: StartJobArgs) -> dict[str, Any]:
    draft = {**workspace.draft}
    if not draft.get("title"):
        if not draft.get("logline"):
            raise ToolError("the brief is empty: give it at least a logline (update_brief)")
        draft["title"] = title_from(str(draft["logline"]))
    if draft.get("duration_s") is None:
        raise ToolError("duration_s: required (there is no song); set it with update_brief")
    try:
        brief = parse_brief(draft, "brief")
    except KantokuError as exc:
        raise ToolError(exc.message) from None
    jobs = workspace.jobs
    previous = workspace.job_id
    job = jobs.start(jobs.new_id(), brief, planner=args.planner)
    workspace.job_id, workspace.draft = job.id, draft
    # The plan comes in a second or so; the answer says what it holds when it does.
    await _settled(job, PLAN_WAIT_S)
    if job.status == "awaiting_review" and job.plan is not None:
        summary = (f"started job {job.id}; its plan ({len(job.plan['shots'])} shots) "
                   "awaits review")
    elif job.status == "failed":
        summary = f"started job {job.id}; it failed: {(job.error or {}).get('message', '')}"
    else:
        summary = f"started job {job.id}; it is still planning ({job.status})"
    workspace.changes.append({"kind": "job", "summary": summary, "job_id": job.id,
                              "diff": [{"field": "job_id", "from": previous, "to": job.id}]})
    return {"ok": True, "job_id": job.id, "status": job.status, "summary": summary,
            "shots": len(job.plan["shots"]) if job.plan else 0}


async def _settled(job: StudioJob, timeout_s: float) -> None:
    """Wait until `job` pauses at review or ends, at most `timeout_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while job.status in ("created", "running") and loop.time() < deadline:
        await asyncio.sleep(0.1)


def get_plan(workspace: Workspace, _: NoArgs) -> dict[str, Any]:
    job = workspace.require_job()
    if job.plan is None:
        raise ToolError(f"job {job.id} has no plan yet (it is {job.status}); ask again soon")
    plan = Plan.model_validate(job.plan)
    return {"job_id": job.id, "status": job.status, "version": job.plan_version,
            "duration_s": plan.duration_s, "size": f"{plan.width_px}x{plan.height_px}",
            "shots": [_shot_line(shot) for shot in plan.shots],
            "notes": plan.notes,
            "editable": job.status == "awaiting_review"}


def _shot_line(shot: Any) -> dict[str, Any]:
    line = {"id": shot.id, "start_s": round(shot.start_s, 3), "end_s": round(shot.end_s, 3),
            "shot_size": shot.shot_size, "camera_angle": shot.camera_angle,
            "camera_move": shot.camera_move, "characters": shot.characters,
            "location": shot.location, "time_of_day": shot.time_of_day,
            "description": shot.description[:160], "image_prompt": shot.image_prompt[:160]}
    if shot.dialogue:
        line["dialogue"] = [f"{d.speaker}: {d.text}"[:120] for d in shot.dialogue]
    return line


def edit_shot(workspace: Workspace, args: EditShotArgs) -> dict[str, Any]:
    job = workspace.require_job()
    try:
        result = workspace.jobs.edit_shot(job, args.shot_id, args.changes)
    except PlanRefused as exc:
        raise ToolError("the plan rules refuse this edit; nothing changed", exc.problems) \
            from None
    except JobStateError as exc:
        raise ToolError(str(exc)) from None
    if result is None:
        ids = [s["id"] for s in (job.plan or {}).get("shots", [])]
        raise ToolError(f"the plan has no shot {args.shot_id}; its shots are "
                        f"{', '.join(ids[:3])}{' ... ' + ids[-1] if len(ids) > 3 else ''}")
    diff = result["diff"]
    change = {"kind": "plan", "summary": diff["summary"], "diff": diff["changes"],
              "job_id": job.id, "version": result["version"]}
    if result.get("snapped"):
        change["snapped"] = result["snapped"]
    workspace.changes.append(change)
    return {"ok": True, "version": result["version"], "summary": diff["summary"],
            "must_render_again": diff["stale"], "render_steps": diff["render_steps"],
            **({"snapped": result["snapped"]} if result.get("snapped") else {})}


def explain_rights(workspace: Workspace, _: NoArgs) -> dict[str, Any]:
    job = workspace.job
    if job is None:
        return {"note": "no job yet: this is the policy gate on the draft brief",
                **_policy_on_draft(workspace.draft)}
    policy = job.policy or {}
    verdict = (job.report or {}).get("verdict") if isinstance(job.report, dict) else None
    result: dict[str, Any] = {"job_id": job.id, "use": policy.get("use"),
                              "items": [_item_line(i) for i in policy.get("items", [])],
                              "would_change_it": _levers(policy)}
    if verdict:
        result["verdict"] = verdict
    else:
        result["note"] = "the publish/monetize verdict is written when the job is done"
    return result


def _policy_on_draft(draft: dict[str, Any]) -> dict[str, Any]:
    from kantoku.planner.rights.policy import check_policy
    from kantoku.services._core.registry import ModelRegistry

    try:
        brief = parse_brief({"title": "untitled", **draft}, "brief")
        width, height = brief.size
        empty = Plan(title=brief.title, duration_s=brief.duration_s or 1.0, width_px=width,
                     height_px=height, fps=brief.fps, shots=[])
        report = check_policy(brief, empty, ModelRegistry(), song=None)
    except KantokuError as exc:
        raise ToolError(exc.message) from None
    policy = report.model_dump(mode="json")
    return {"use": report.use, "items": [_item_line(i) for i in policy["items"]],
            "would_change_it": _levers(policy)}


def _item_line(item: dict[str, Any]) -> dict[str, Any]:
    line = {"kind": item.get("kind"), "id": item.get("id"), "license": item.get("license"),
            "holder": item.get("holder"), "commercial_use": item.get("commercial_use"),
            "ok": item.get("ok")}
    if item.get("violations"):
        line["violations"] = item["violations"]
    return line


def _levers(policy: dict[str, Any]) -> list[str]:
    """What would change the verdict, in plain words, from the policy report."""
    use = policy.get("use", "commercial")
    levers = []
    for item in policy.get("items", []):
        name = f"{item.get('kind')} {item.get('id')} (license {item.get('license')})"
        for violation in item.get("violations", []):
            levers.append(f"{name} breaks the policy ({violation}): replace it, or change "
                          "rights_policy.use in the brief")
        if not item.get("commercial_use") and use == "commercial":
            levers.append(f"{name} is not cleared for commercial use: monetizing needs it "
                          "replaced")
    if use == "internal":
        levers.append('rights_policy.use is "internal": internal work is never published; '
                      'set it to "commercial" or "non-commercial" to publish')
    elif use == "non-commercial":
        levers.append('rights_policy.use is "non-commercial": only "commercial" allows '
                      "monetizing")
    return levers or ["nothing: every item is cleared for the brief's use"]


def job_status(workspace: Workspace, _: NoArgs) -> dict[str, Any]:
    job = workspace.require_job()
    names = [e["event"] for e in job.events]
    stages = [e["data"].get("stage") for e in job.events if e["event"] == "stage"]
    result: dict[str, Any] = {"job_id": job.id, "status": job.status,
                              "plan_version": job.plan_version,
                              "shots": len(job.plan["shots"]) if job.plan else 0,
                              "shots_done": names.count("shot_done"),
                              "stage": stages[-1] if stages else None,
                              "outputs": [o["name"] for o in job.outputs()]}
    if job.error:
        result["error"] = job.error
    if job.status == "awaiting_review":
        result["next"] = "the plan awaits the director's approval (propose approve)"
    elif job.status in FINISHED:
        result["next"] = "the job is over" if job.status != "done" else \
            "the video is ready; a shot can be regenerated (propose regenerate)"
    return result


def propose(workspace: Workspace, args: ProposeArgs) -> dict[str, Any]:
    job = workspace.require_job()
    proposal: dict[str, Any] = {"action": args.action, "job_id": job.id}
    if args.action == "approve":
        if job.status != "awaiting_review":
            raise ToolError(f"job {job.id} is {job.status}; only a plan awaiting review can be "
                            "approved")
        summary = args.summary or f"render job {job.id} with plan version {job.plan_version}"
    else:
        if not args.shot_id:
            raise ToolError("shot_id: required to regenerate a shot")
        shots = [s["id"] for s in (job.plan or {}).get("shots", [])]
        if args.shot_id not in shots:
            raise ToolError(f"the plan has no shot {args.shot_id}")
        if job.status != "done":
            raise ToolError(f"job {job.id} is {job.status}; a shot is regenerated once the job "
                            "is done (before that, edit the shot and approve)")
        proposal["shot_id"] = args.shot_id
        summary = args.summary or f"render shot {args.shot_id} of job {job.id} again"
    proposal["summary"] = summary
    workspace.proposals.append(proposal)
    return {"ok": True, "proposed": proposal,
            "note": "nothing was started: the director decides with the button on the page"}


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[Args] | None  # None: the arguments are brief fields (update_brief)
    run: Callable[..., Any]

    def spec(self) -> dict[str, Any]:
        parameters = _schema(self.args) if self.args else _BRIEF_SCHEMA
        return {"type": "function", "function": {"name": self.name,
                                                 "description": self.description,
                                                 "parameters": parameters}}


TOOLS: dict[str, Tool] = {tool.name: tool for tool in (
    Tool("get_brief", "Read the brief (before a job: the draft being written).", NoArgs,
         get_brief),
    Tool("update_brief", "Change fields of the draft brief (title, logline, duration_s, style, "
         "mood, locations, characters, ...); a field set to null goes back to its default.",
         None, update_brief),
    Tool("start_job", "Start a job from the brief: it plans the shots and stops for review "
         "(nothing renders until the director approves).", StartJobArgs, start_job),
    Tool("get_plan", "Read the job's shot plan.", NoArgs, get_plan),
    Tool("edit_shot", "Change some fields of one shot of the plan awaiting review (e.g. "
         "image_prompt, shot_size, camera_move, characters, end_s).", EditShotArgs, edit_shot),
    Tool("explain_rights", "The rights policy report: each model and asset, its license, "
         "what breaks the policy and what would change the verdict.", NoArgs, explain_rights),
    Tool("job_status", "The job's progress: status, stage, shots done, files.", NoArgs,
         job_status),
    Tool("propose", "Propose to the director to approve the plan, or to regenerate a shot of "
         "a finished job; the director decides with a button.", ProposeArgs, propose),
)}


def tool_specs() -> list[dict[str, Any]]:
    return [tool.spec() for tool in TOOLS.values()]


@dataclass
class ToolOutcome:
    """A tool call's answer for the model, and whether it ran."""

    content: str
    ok: bool
    error: str | None = None


async def call_tool(workspace: Workspace, name: str, arguments: str) -> ToolOutcome:
    """Check and run one tool call; every refusal is an answer the model can read."""
    tool = TOOLS.get(name)
    if tool is None:
        return refused(f"there is no tool named {name!r}; the tools are "
                        f"{', '.join(TOOLS)}")
    try:
        raw = json.loads(arguments or "{}")
    except ValueError as exc:
        return refused(f"the arguments of {name} are not JSON ({exc}); send a JSON object")
    if not isinstance(raw, dict):
        return refused(f"the arguments of {name} must be a JSON object")
    try:
        if tool.args is None:
            result = tool.run(workspace, raw)
        else:
            try:
                args = tool.args.model_validate(raw)
            except ValidationError as exc:
                return refused(f"the arguments of {name} do not fit: {describe_errors(exc)}")
            result = tool.run(workspace, args)
        if asyncio.iscoroutine(result):
            result = await result
    except ToolError as exc:
        return refused(str(exc), exc.problems)
    except KantokuError as exc:  # e.g. the job's folder could not be claimed
        return refused(exc.message)
    return ToolOutcome(_dumps(result), ok=True)


def refused(message: str, problems: list[dict[str, Any]] | None = None) -> ToolOutcome:
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = [describe(p) for p in problems]
    return ToolOutcome(_dumps(body), ok=False, error=message)


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS - 1] + "…"
