"""The LLM planner: the rules cut the grid, the LLM fills it, a quality gate decides.

1. The grid is the heuristic planner's plan for the brief (cuts on the song's beats, bars,
   sections and lyric lines, or even shots over the running time).
2. The LLM is asked, batch by batch (`exchange.py`), what each shot shows, who is in it, the
   framing, the camera move, the place, where the dialogue falls, and which cuts to hold.
3. The quality gate (`gate.py`) checks the plan. Batches with problems are re-asked once with
   the problems named; what is still wrong is repaired shot by shot from the heuristic's
   version of that shot (`compose.repair_ideas`). A plan that still fails the gate, or scores
   below the heuristic plan, is replaced by the heuristic plan: the director never gets a
   worse plan because an LLM was asked.

Every call, every gate round and every repair is recorded for the ledger, and `PlanningReport`
says in one line what happened. Nothing an endpoint does raises out of `plan_with_llm`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.compose import (
    RULES,
    Composed,
    Problem,
    compose,
    repair_ideas,
)
from kantoku.planner.planning.endpoint import (
    Endpoint,
    LLMFailure,
    LLMSession,
    LLMSettings,
    llm_configured,
    llm_settings,
    open_endpoint,
    shorten,
)
from kantoku.planner.planning.exchange import (
    Batch,
    Detail,
    ShotIdea,
    batch_message,
    batch_schema,
    batches,
    max_tokens_for,
    read_answer,
    reask_message,
    section_batch,
    system_message,
)
from kantoku.planner.planning.gate import CheckResult, failed, run_gate, score_plan
from kantoku.planner.planning.plan import Plan

__all__ = ["LLMPlanResult", "LLMSettings", "PlanningReport", "llm_configured", "llm_settings",
           "plan_with_llm"]

Emit = Callable[[dict[str, Any]], None]
#: Rounds of shot-by-shot repair from the rules before the heuristic plan is used instead.
_REPAIR_ROUNDS = 3


@dataclass
class PlanningReport:
    """What planning did, for the job's summary line and the ledger."""

    planner: str
    seconds: float
    model: str | None = None
    endpoint: str | None = None
    calls: int = 0
    tokens: int = 0
    reasks: int = 0
    #: Shots with at least one field the rules repaired after the gate.
    repaired_shots: int = 0
    llm_fields: int = 0
    rules_fields: int = 0
    fallback_reason: str | None = None
    #: The gate's last result: check name → passed.
    gate: dict[str, bool] = field(default_factory=dict)
    score: float | None = None
    heuristic_score: float | None = None

    def summary(self) -> str:
        if self.planner == "heuristic" and self.fallback_reason is None:
            return f"plan: heuristic planner, {self.seconds:.1f} s"
        if self.fallback_reason is not None:
            return (f"plan: heuristic planner (the LLM{self._model()} was not used: "
                    f"{self.fallback_reason}), {self.seconds:.1f} s, {self._calls()}")
        parts = [self._calls()]
        if self.reasks:
            parts.append(f"{self.reasks} re-ask{'s' * (self.reasks > 1)}")
        if self.repaired_shots:
            parts.append(f"{self.repaired_shots} shot{'s' * (self.repaired_shots > 1)} "
                         "repaired from the rules")
        share = self.llm_fields / max(1, self.llm_fields + self.rules_fields)
        parts.append(f"{share:.0%} of shot fields from the LLM")
        return f"plan: LLM planner{self._model()}, {self.seconds:.1f} s, " + ", ".join(parts)

    def _model(self) -> str:
        return f" {self.model} at {self.endpoint}" if self.model else ""

    def _calls(self) -> str:
        return f"{self.calls} call{'s' * (self.calls != 1)}, {self.tokens} tokens"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LLMPlanResult:
    """A plan and how it was made.

    Attributes:
        plan: always renderable.
        calls: one record per HTTP request, for the ledger.
        gates: one record per gate round (each check's result).
        repairs: what the rules repaired after the gate.
        fallback_reason: why the heuristic plan was used; None when the LLM's was.
    """

    plan: Plan
    report: PlanningReport
    calls: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    fallback_reason: str | None = None


@dataclass
class _Run:
    """One planning run's moving parts."""

    brief: Brief
    grid: Plan
    longest_s: float
    session: LLMSession
    emit: Emit
    ideas: list[ShotIdea]
    work: list[Batch]
    detail: Detail
    system: str
    gates: list[dict[str, Any]] = field(default_factory=list)
    #: Why the LLM stopped being asked (a timeout, a dead endpoint); None while it is.
    stopped: str | None = None
    reasks: int = 0

    def gate(self, composed: Composed, round_name: str) -> list[CheckResult]:
        results = run_gate(composed, self.brief, self.grid, longest_s=self.longest_s,
                           instruction_text=self.system.split("\nThe brief:")[0])
        self.gates.append({"round": round_name, "passed": not failed(results),
                           "checks": [r.to_json() for r in results]})
        self.emit({"event": "plan_gate", "round": round_name,
                   "failed": [r.name for r in results if not r.ok]})
        return results


async def plan_with_llm(brief: Brief, grid: Plan, *, longest_s: float,
                        settings: LLMSettings | None = None, emit: Emit | None = None,
                        beats_s: Sequence[float] | None = None,
                        endpoint: Endpoint | None = None) -> LLMPlanResult:
    """The LLM's plan on `grid` when it passes the quality gate, else the heuristic's.

    Args:
        brief: the validated brief.
        grid: the heuristic plan for the brief (its cuts, sections and lyrics are the grid).
        longest_s: the longest shot the LLM may make by holding cuts.
        settings: endpoint, model, limits; read from the environment when omitted.
        emit: receives progress events (``llm_progress``, ``plan_gate``).
        beats_s: the song's beats, for the score.
        endpoint: the endpoint to use (a long-lived process keeps one open); by default the
            configured one, or the embedded LLM for the duration of the call.
    """
    started = time.perf_counter()
    settings = settings or llm_settings()
    emit = emit or (lambda event: None)
    calls: list[dict[str, Any]] = []
    try:
        async with AsyncExitStack() as stack:
            if endpoint is None:
                endpoint = await stack.enter_async_context(open_endpoint(settings))
            session = LLMSession(endpoint, settings, emit)
            stack.push_async_callback(session.close)
            calls = session.calls
            return await _plan(session, brief, grid, longest_s, emit, beats_s, started)
    except LLMFailure as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - the planner must always produce a plan
        reason = f"{type(exc).__name__}: {shorten(str(exc))}"
    model = (endpoint.model if endpoint is not None else None) or settings.model
    return _fallback(grid, reason, calls, [], started, model=model)


async def _plan(session: LLMSession, brief: Brief, grid: Plan, longest_s: float, emit: Emit,
                beats_s: Sequence[float] | None, started: float) -> LLMPlanResult:
    model = await session.check_model()
    detail = session.settings.detail or ("compact" if session.endpoint.embedded else "full")
    work = batches(grid, session.settings.batch_shots) if detail == "full" else \
        [section_batch(grid)]
    run = _Run(brief, grid, longest_s, session, emit, [ShotIdea() for _ in grid.shots], work,
               detail, system_message(brief, grid, detail))
    answer_problems: dict[int, list[str]] = {}
    for index, batch in enumerate(run.work):
        answer_problems[index] = await _ask(run, batch)
        if run.stopped:
            break
    # Compact answers do not place dialogue: the rules place every line.
    by_rules = detail == "compact"
    composed = compose(grid, run.ideas, brief, longest_s=longest_s, place_open_lines=by_rules)
    problems = failed(run.gate(composed, "answers"))
    if (problems or any(answer_problems.values())) and not run.stopped:
        await _reask(run, problems, answer_problems)
        composed = compose(grid, run.ideas, brief, longest_s=longest_s,
                           place_open_lines=by_rules)
        problems = failed(run.gate(composed, "re-asked"))
    if all(idea.empty for idea in run.ideas):
        return _fallback(grid, run.stopped or "none of its answers could be used",
                         session.calls, run.gates, started, model=model, host=session.host)
    repairs: list[str] = []
    for round_number in range(1, _REPAIR_ROUNDS + 1):
        if not problems:
            break
        # A repair can uncover another problem (a character put back into a shot whose
        # description does not name them): repair until the gate passes, a few rounds at most.
        repairs += repair_ideas(run.ideas, grid, brief, problems)
        composed = compose(grid, run.ideas, brief, longest_s=longest_s, place_open_lines=True)
        repairs += [f"dialogue line {i + 1}: placed by the rules" for i in sorted(
            {p.line for p in problems if p.check == "dialogue" and p.line is not None})]
        problems = failed(run.gate(composed, "repaired" if round_number == 1 else
                                   f"repaired ({round_number})"))
    plan = composed.plan
    plan.notes = [*plan.notes, *composed.notes, *repairs]
    score, baseline = score_plan(plan, brief, beats_s), score_plan(grid, brief, beats_s)
    if problems or score.total < baseline.total:
        reason = ("the plan still failed the quality gate (" +
                  "; ".join(p.message for p in problems[:3]) + ")") if problems else \
            f"its plan scored {score.total:.2f}, below the heuristic plan's {baseline.total:.2f}"
        return _fallback(grid, reason, session.calls, run.gates, started, model=model,
                         host=session.host)
    if run.stopped:
        plan.notes.append(f"the LLM stopped being asked ({run.stopped}); the shots it did "
                          "not answer are the rules'")
    report = PlanningReport(
        "llm", time.perf_counter() - started, model, session.host, len(session.calls),
        sum(c["completion_tokens"] or 0 for c in session.calls), run.reasks,
        len({n.split(":")[0] for n in repairs if n.startswith("s")}),
        *_field_counts(plan), gate={r["check"]: r["ok"] for r in run.gates[-1]["checks"]},
        score=round(score.total, 3), heuristic_score=round(baseline.total, 3))
    plan.notes.insert(0, report.summary())
    return LLMPlanResult(plan, report, session.calls, run.gates, repairs)


async def _ask(run: _Run, batch: Batch, problems: Sequence[str] = ()) -> list[str]:
    """Ask about `batch` (naming the `problems` of an earlier answer); its ideas go into
    `run.ideas`. Returns the answer's own problems (its form, not the gate's)."""
    number = next((i for i, b in enumerate(run.work) if b.start == batch.start), 0)
    placed = sorted({n for idea in run.ideas[:batch.start] for n in (idea.lines or [])})
    previous = run.ideas[batch.start - 1].show if batch.start else None
    text = batch_message(run.grid, batch, placed, run.brief, previous)
    if problems:
        text += "\n" + reask_message(problems, batch)
    messages = [{"role": "system", "content": run.system}, {"role": "user", "content": text}]
    label = batch.label(len(run.grid.shots)) + (" (re-asked)" if problems else "")
    run.emit({"event": "llm_batch", "batch": number + 1, "batches": len(run.work),
              "label": label})
    try:
        answer = await run.session.ask(messages, batch_schema(run.brief, batch.size, run.detail),
                                       max_tokens=max_tokens_for(batch.size, run.detail),
                                       purpose=label)
    except LLMFailure as exc:
        run.stopped = f"{batch.label(len(run.grid.shots))}: {exc}"
        return []
    ideas, found = read_answer(answer.text, run.brief, batch, run.grid)
    if answer.finish_reason == "length":
        found.insert(0, "the answer was cut off at the token limit; keep each show short")
    for index, idea in zip(batch.shot_indices, ideas, strict=True):
        if not idea.empty:
            run.ideas[index] = idea
    run.session.judge(not found, found)
    return found


async def _reask(run: _Run, problems: list[Problem], answer_problems: dict[int, list[str]]
                 ) -> None:
    """Re-ask once, naming the problems: a batch whose answer was unusable as a whole is asked
    again whole, any other only for the shots (or sections) the gate found problems in."""
    named: dict[int, list[str]] = {i: list(found) for i, found in answer_problems.items()
                                   if found}
    whole = set(named)
    shots: dict[int, set[int]] = {}
    for problem in problems:
        index = _batch_of(run.work, problem.shot) if problem.shot is not None else 0
        named.setdefault(index, []).append(problem.message)
        if problem.shot is not None:
            shots.setdefault(index, set()).add(problem.shot)
    for index in sorted(named):
        if run.stopped:
            return
        run.reasks += 1
        batch = run.work[index]
        if index not in whole and shots.get(index):
            batch = batch.covering(shots[index])
        await _ask(run, batch, named[index])


def _batch_of(work: list[Batch], shot: int) -> int:
    return next(i for i, b in enumerate(work) if shot in b.shot_indices)


def _field_counts(plan: Plan) -> tuple[int, int]:
    values = [v for shot in plan.shots for v in shot.sources.values()]
    return sum(v != RULES for v in values), sum(v == RULES for v in values)


def _fallback(grid: Plan, reason: str, calls: list[dict[str, Any]], gates: list[dict[str, Any]],
              started: float, *, model: str | None = None, host: str | None = None
              ) -> LLMPlanResult:
    plan = grid.model_copy(deep=True)
    plan.planner = f"heuristic (fallback: {shorten(reason, 120)})"
    report = PlanningReport("heuristic", time.perf_counter() - started, model, host, len(calls),
                            sum(c["completion_tokens"] or 0 for c in calls),
                            fallback_reason=reason)
    plan.notes = [report.summary(), *plan.notes]
    return LLMPlanResult(plan, report, calls, gates, [], reason)
