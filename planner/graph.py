"""The job graph: brief → plan → policy gate → review → shots in parallel → finished video.

    intake → plan_shots → policy_gate → review ─Send per shot→ render_shot → collect
           → assemble → sign → report

Nodes are `async def verb_noun(state, runtime) -> dict` returning partial updates. The runtime
context (services, store, cache, ledger) is rebuilt on resume; the state is checkpointed after
every step, so a killed job resumes where it stopped and finished shots are not rendered again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from kantoku.planner.context import Event, JobContext
from kantoku.planner.finish import steps as finish
from kantoku.planner.music import steps as music
from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.diff import diff_plans
from kantoku.planner.planning.heuristic import heuristic_plan
from kantoku.planner.planning.llm import LLMPlanResult, plan_with_llm
from kantoku.planner.planning.plan import Plan, plan_problems
from kantoku.planner.render import render_shot as render_shot_assets
from kantoku.planner.rights.policy import check_policy, enforce
from kantoku.planner.state import JobState, ShotTask
from kantoku.services._core.errors import KantokuError, invalid
from kantoku.services._core.registry import ModelRegistry

Emit = Callable[[Event], None]


def brief_of(state: JobState | ShotTask) -> Brief:
    return Brief.model_validate(state["brief"])


def plan_of(state: JobState | ShotTask) -> Plan:
    return Plan.model_validate(state["plan"])


async def intake(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    """Fix the running time: the song's when there is one, else the brief's duration_s."""
    brief = brief_of(state)
    ctx = runtime.context
    ctx.emit({"event": "stage", "stage": "intake"})
    if state.get("song"):
        lyrics = state.get("lyrics")
        return await music.intake_song(Path(state["song"]), Path(lyrics) if lyrics else None,
                                       brief, ctx, known=state.get("song_analysis"))
    if brief.duration_s is None:
        raise invalid("duration_s: required when there is no song; add duration_s to the brief "
                      "or pass --song", reason="DURATION_MISSING")
    ctx.ledger.append(ctx.job_id, "intake", data={"title": brief.title,
                                                  "duration_s": brief.duration_s})
    return {"duration_s": brief.duration_s}


async def make_plan(brief: Brief, duration_s: float, song: dict[str, Any], planner: str,
                    emit: Emit | None = None) -> tuple[Plan, LLMPlanResult | None]:
    """The plan from the chosen planner, on the grid the song's sections, beats and lyric lines
    cut (or even shots over the running time)."""
    sections, cuts = music.plan_guides(song)
    notes = list(song.get("notes", []))
    grid = music.with_lyrics(heuristic_plan(brief, duration_s, sections=sections,
                                            cut_times=cuts, notes=notes), song)
    result = None
    plan = grid
    if planner == "llm":
        analysis = music.analysis_of(song)
        result = await plan_with_llm(brief, grid, longest_s=music.MAX_SHOT_S, emit=emit,
                                     beats_s=analysis.beats_s if analysis else None)
        plan = music.with_lyrics(result.plan, song)
    problems = plan_problems(plan, {c.name for c in brief.characters})
    if problems:  # the planners repair their own output; this is a bug, not bad input
        raise KantokuError("; ".join(problems), "PLAN_INVALID")
    return plan, result


async def plan_shots(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    brief, ctx = brief_of(state), runtime.context
    ctx.emit({"event": "stage", "stage": "plan"})
    if state.get("edit"):
        return planned_edit(state, ctx)
    plan, result = await make_plan(brief, state["duration_s"], state.get("song_analysis") or {},
                                   state.get("planner", "heuristic"), ctx.emit)
    planning = None
    if result is not None:
        for call in result.calls:
            ctx.ledger.append(ctx.job_id, "llm_call", data=call)
        for gate in result.gates:
            ctx.ledger.append(ctx.job_id, "plan_gate", data=gate)
        for repair in result.repairs:
            ctx.ledger.append(ctx.job_id, "repair", data={"repair": repair})
        if result.fallback_reason:
            ctx.ledger.append(ctx.job_id, "fallback", data={"reason": result.fallback_reason})
        planning = result.report.to_json()
        ctx.emit({"event": "planning", "summary": result.report.summary()})
    ctx.ledger.append(ctx.job_id, "plan", data={"planner": plan.planner,
                                                "shots": len(plan.shots), "notes": plan.notes,
                                                "planning": planning})
    ctx.emit({"event": "plan_ready", "plan": plan.model_dump(mode="json")})
    return {"plan": plan.model_dump(mode="json")}


def planned_edit(state: JobState, ctx: JobContext) -> dict[str, Any]:
    """An edited plan (from a timeline or the studio) instead of a planner's: its lyrics are
    placed on the new cut, and the edit (parent job, its ledger head, the diff) is recorded."""
    edit = state["edit"]
    plan = music.with_lyrics(Plan.model_validate(edit["plan"]), state.get("song_analysis") or {})
    ctx.ledger.append(ctx.job_id, "edit", data={k: v for k, v in edit.items() if k != "plan"})
    ctx.ledger.append(ctx.job_id, "plan", data={"planner": plan.planner,
                                                "shots": len(plan.shots), "notes": plan.notes})
    ctx.emit({"event": "plan_ready", "plan": plan.model_dump(mode="json")})
    return {"plan": plan.model_dump(mode="json")}


async def policy_gate(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    """Check every model, voice, reference and song against the rights policy; no compute yet."""
    ctx = runtime.context
    ctx.emit({"event": "stage", "stage": "policy"})
    song = Path(state["song"]) if state.get("song") else None
    report = check_policy(brief_of(state), plan_of(state), ModelRegistry(), song=song)
    ctx.ledger.append(ctx.job_id, "policy", data=report.model_dump(mode="json"))
    enforce(report)
    return {"policy": report.model_dump(mode="json")}


async def review(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    """Show the plan and wait for a person (`--yes` approves in batch mode)."""
    if state.get("auto_approve"):
        return {}
    answer = interrupt({"plan": state["plan"], "policy": state["policy"]})
    if isinstance(answer, dict) and "plan" in answer:  # an edited plan
        plan = Plan.model_validate(answer["plan"])
        problems = plan_problems(plan, {c.name for c in brief_of(state).characters})
        if problems:
            raise invalid("edited plan: " + "; ".join(problems), reason="PLAN_INVALID")
        diff = diff_plans(plan_of(state), plan)
        ctx = runtime.context
        ctx.ledger.append(ctx.job_id, "plan_edit", data={
            "summary": diff.summary(), "render_steps": diff.render_steps,
            "changes": [{"shot_id": c.shot_id, "status": c.status, "fields": c.fields}
                        for c in diff.changed]})
        return {"plan": plan.model_dump(mode="json")}
    if answer is not True:
        raise KantokuError("the plan was not approved; edit the brief and run again",
                           "PLAN_REJECTED")
    return {}


def fan_out(state: JobState) -> list[Send] | str:
    """One render task per shot not yet rendered; straight to collect when none is left."""
    plan = state["plan"]
    outline = {k: v for k, v in plan.items() if k != "shots"}
    todo = [shot for shot in plan["shots"] if shot["id"] not in state.get("shots", {})]
    # Longest work first: shots reach the services' queues in that order, which keeps every
    # replica busy until the end (a longest-processing-time-first schedule).
    todo.sort(key=render_cost, reverse=True)
    sends = [Send("render_shot", ShotTask(shot=shot, plan=outline | {"shots": [shot]},
                                          brief=state["brief"])) for shot in todo]
    return sends or "collect"


def render_cost(shot: dict[str, Any]) -> float:
    """Relative render work of a shot: its running time, plus its dialogue lines."""
    return float(shot["end_s"]) - float(shot["start_s"]) + 0.5 * len(shot.get("dialogue", []))


async def render_shot(task: ShotTask, runtime: Runtime[JobContext]) -> dict[str, Any]:
    plan, brief = plan_of(task), brief_of(task)
    shot = plan.shots[0]
    ctx = runtime.context
    render = ctx.renderer or render_shot_assets
    if ctx.slots is None:
        result = await render(ctx, shot, plan, brief)
    else:
        async with ctx.slots.slot():
            result = await render(ctx, shot, plan, brief)
    runtime.context.emit({"event": "shot_done", "shot_id": shot.id})
    return {"shots": {shot.id: result}, "notes": result["notes"]}


async def collect(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    missing = [s["id"] for s in state["plan"]["shots"] if s["id"] not in state.get("shots", {})]
    if missing:
        raise KantokuError(f"shots {', '.join(missing)} did not render; resume the job",
                           "SHOTS_MISSING")
    runtime.context.emit({"event": "stage", "stage": "collect"})
    return {}


async def assemble(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    runtime.context.emit({"event": "stage", "stage": "assemble"})
    return {"assembly": await finish.assemble_job(state, runtime.context)}


async def sign(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    runtime.context.emit({"event": "stage", "stage": "sign"})
    return {"signed": await finish.sign_job(state, runtime.context)}


async def report(state: JobState, runtime: Runtime[JobContext]) -> dict[str, Any]:
    runtime.context.emit({"event": "stage", "stage": "report"})
    return {"report": await finish.report_job(state, runtime.context)}


def build_graph(until: str | None = None) -> StateGraph:
    """The job graph; `until="collect"` stops after the shots render (benchmarks)."""
    graph = StateGraph(JobState, context_schema=JobContext)
    for node in (intake, plan_shots, policy_gate, review, render_shot, collect, assemble, sign,
                 report):
        graph.add_node(node.__name__, node)  # type: ignore[call-overload]
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "plan_shots")
    graph.add_edge("plan_shots", "policy_gate")
    graph.add_edge("policy_gate", "review")
    graph.add_conditional_edges("review", fan_out, ["render_shot", "collect"])
    graph.add_edge("render_shot", "collect")
    if until == "collect":
        graph.add_edge("collect", END)
        return graph
    graph.add_edge("collect", "assemble")
    graph.add_edge("assemble", "sign")
    graph.add_edge("sign", "report")
    graph.add_edge("report", END)
    return graph
