"""The planners side by side: time to an approved plan, LLM calls and tokens, re-asks, gate
failures, and a plan score, on the examples (one of them briefed in Japanese, with the song).

Planners: the heuristic (the baseline of every ratio), the embedded LLM (started once, its start
time printed apart), and the endpoint in OPENAI_BASE_URL / OPENAI_API_KEY when one is set.
The score (0-1) is the mean of: characters shown, dialogue lines on their speaker's shot in
order, cuts within a frame of a beat (songs), and image prompts naming style, place and cast.

Goals: the embedded LLM's plans score at least the heuristic's; it plans the 30 s song in under
20 s here; no call runs past its stated timeout.
Run: .venv/bin/python bench/planner.py [--cases city,mv,mv-ja]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("KANTOKU_HOME", tempfile.mkdtemp(prefix="kantoku-bench-"))

from kantoku.planner.graph import make_plan  # noqa: E402
from kantoku.planner.music import steps as music  # noqa: E402
from kantoku.planner.planning.brief import Brief, load_brief  # noqa: E402
from kantoku.planner.planning.endpoint import Endpoint, LLMSettings, llm_configured  # noqa: E402
from kantoku.planner.planning.gate import score_plan  # noqa: E402
from kantoku.planner.planning.heuristic import heuristic_plan  # noqa: E402
from kantoku.planner.planning.llm import plan_with_llm  # noqa: E402
from kantoku.planner.planning.plan import Plan  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = {
    "city": ("city-night.yaml", None, None),
    "mv": ("brief.yaml", "song.wav", "song.lrc"),
    "mv-ja": ("hikari-ja.yaml", "song.wav", "song.lrc"),
}
GOAL_SONG_S = 20.0


@dataclass
class Case:
    name: str
    brief: Brief
    song: dict[str, Any]
    duration_s: float

    @property
    def beats(self) -> list[float] | None:
        analysis = music.analysis_of(self.song)
        return analysis.beats_s if analysis else None

    def grid(self) -> Plan:
        sections, cuts = music.plan_guides(self.song)
        return music.with_lyrics(heuristic_plan(self.brief, self.duration_s, sections=sections,
                                                cut_times=cuts), self.song)


async def load_case(name: str) -> Case:
    brief_file, song, lyrics = CASES[name]
    brief = load_brief(EXAMPLES / brief_file)
    document: dict[str, Any] = {}
    duration = brief.duration_s or 0.0
    if song:
        document = await music.read_song(EXAMPLES / song, EXAMPLES / lyrics if lyrics else None,
                                         brief)
        duration = float(document["analysis"]["duration_s"])
    return Case(name, brief, document, duration)


@asynccontextmanager
async def embedded() -> AsyncIterator[tuple[Endpoint, float]]:
    from kantoku.services.llm.hosting import embedded_endpoint

    started = time.perf_counter()
    async with embedded_endpoint() as served:
        yield Endpoint(served.base_url, served.model, embedded=True), \
            time.perf_counter() - started


async def run_heuristic(case: Case) -> dict[str, Any]:
    started = time.perf_counter()
    plan, _ = await make_plan(case.brief, case.duration_s, case.song, "heuristic")
    return row("heuristic", case, plan, time.perf_counter() - started)


async def run_llm(label: str, case: Case, endpoint: Endpoint | None,
                  settings: LLMSettings) -> dict[str, Any]:
    started = time.perf_counter()
    result = await plan_with_llm(case.brief, case.grid(), longest_s=music.MAX_SHOT_S,
                                 settings=settings, beats_s=case.beats, endpoint=endpoint)
    seconds = time.perf_counter() - started
    first = result.gates[0]["checks"] if result.gates else []
    over = [c["latency_ms"] / 1000 / c["timeout_s"] for c in result.calls]
    return row(label, case, result.plan, seconds) | {
        "calls": len(result.calls),
        "tokens": sum(c["completion_tokens"] or 0 for c in result.calls),
        "reasks": result.report.reasks,
        "gate_failures": sum(not c["ok"] for c in first),
        "repaired": result.report.repaired_shots,
        "llm_share": result.report.llm_fields / max(
            1, result.report.llm_fields + result.report.rules_fields),
        "longest_call_of_timeout": max(over, default=0.0),
        "fallback": result.fallback_reason or "",
    }


def row(label: str, case: Case, plan: Plan, seconds: float) -> dict[str, Any]:
    score = score_plan(plan, case.brief, case.beats)
    return {"planner": label, "case": case.name, "seconds": seconds, "shots": len(plan.shots),
            "score": score.total, "characters": score.characters, "dialogue": score.dialogue,
            "beats": score.cuts_on_beats, "prompts": score.prompts, "calls": 0, "tokens": 0,
            "reasks": 0, "gate_failures": 0, "repaired": 0, "llm_share": 0.0,
            "longest_call_of_timeout": 0.0, "fallback": ""}


def print_rows(rows: list[dict[str, Any]]) -> None:
    header = ("planner", "case", "seconds", "shots", "score", "chars", "dialog", "beats",
              "prompts", "calls", "tokens", "reasks", "gate fail", "repaired", "LLM share",
              "call/timeout")
    print(" | ".join(header))
    for r in rows:
        beats = "-" if r["beats"] is None else f"{r['beats']:.2f}"
        print(" | ".join([
            r["planner"], r["case"], f"{r['seconds']:.2f}", str(r["shots"]), f"{r['score']:.3f}",
            f"{r['characters']:.2f}", f"{r['dialogue']:.2f}", beats, f"{r['prompts']:.2f}",
            str(r["calls"]), str(r["tokens"]), str(r["reasks"]), str(r["gate_failures"]),
            str(r["repaired"]), f"{r['llm_share']:.0%}", f"{r['longest_call_of_timeout']:.2f}"]))
        if r["fallback"]:
            print(f"    fallback: {r['fallback']}")


def print_ratios(rows: list[dict[str, Any]]) -> None:
    baseline = {r["case"]: r for r in rows if r["planner"] == "heuristic"}
    print("\nratios against the heuristic planner (same case, same run):")
    for r in rows:
        if r["planner"] == "heuristic":
            continue
        base = baseline[r["case"]]
        print(f"  {r['planner']:>9} {r['case']:>6}: score x{r['score'] / base['score']:.3f}, "
              f"time x{r['seconds'] / max(base['seconds'], 1e-6):.0f}")
    for r in rows:
        if r["planner"] == "embedded" and r["case"].startswith("mv"):
            verdict = "meets" if r["seconds"] < GOAL_SONG_S else "misses"
            print(f"  embedded {r['case']}: {r['seconds']:.1f} s for the 30 s song "
                  f"({verdict} the {GOAL_SONG_S:g} s goal)")
    worst = max((r["longest_call_of_timeout"] for r in rows), default=0.0)
    print(f"  longest call: {worst:.2f} of its timeout (must stay under 1.00)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded LLM")
    args = parser.parse_args()
    cases = [await load_case(name) for name in args.cases.split(",")]
    rows = [await run_heuristic(case) for case in cases]
    external = LLMSettings()
    if not args.no_embedded:
        async with embedded() as (endpoint, start_s):
            print(f"embedded LLM {endpoint.model} started in {start_s:.1f} s")
            local = LLMSettings(base_url=None, api_key=None)
            rows += [await run_llm("embedded", case, endpoint, local) for case in cases]
    if llm_configured(external):
        rows += [await run_llm("endpoint", case, None, external) for case in cases]
    print_rows(rows)
    print_ratios(rows)


if __name__ == "__main__":
    asyncio.run(main())
