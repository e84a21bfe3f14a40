"""The rights report of a job: may it be published or monetized, what made it, whom to credit.

Written next to the video as ``rights.json`` (for machines) and ``rights.html`` (one
self-contained page for people). Built from the policy gate's report and the job's ledger, so it
also covers models the render used that the gate did not see (a fallback, for instance).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan
from kantoku.planner.rights.credits import (
    attribution,
    cards,
    contributors,
    get,
    holder_of,
    record_of,
    shot_parts,
    shot_times,
)
from kantoku.planner.rights.ledger import verify_entries
from kantoku.planner.rights.policy import ItemKind, PolicyItem, PolicyReport, judge
from kantoku.planner.rights.report_html import render_html


def build_report(job_id: str, brief: Brief, policy: PolicyReport, entries: list[dict[str, Any]],
                 *, plan: Plan | None = None) -> dict[str, Any]:
    """Assemble the rights report of one job.

    Args:
        job_id: the job.
        brief: the job's brief (title, policy, song rights).
        policy: what the policy gate checked before the render.
        entries: the job's ledger entries in order (``Ledger.entries``).
        plan: the shot plan, for each shot's time; when not given, the plan stored in the
            ledger's ``plan`` entry (``data["plan"]``) is used, else every shot counts once.

    Returns:
        A JSON-ready dict: job_id, title, date (UTC, ISO 8601), policy, contributors (who made
        what, under which license, with which share), verdict {publish, monetize, reasons},
        shots (id, start_s, end_s in time order), assets (one row per ledger entry with an
        output, full sha256s), checked (every policy item, plus models the ledger shows that
        the gate did not check), attribution {rule, basis, shares, soundtrack} and ledger
        {entries, head_hash, intact, problems}. No value is a path of the rendering machine.
    """
    items = policy.items + _ledger_items(entries, policy)
    problems = verify_entries(entries)
    shots = shot_times(entries, plan)
    parts = shot_parts(entries, items)
    credit = attribution(brief, items, parts, shots)
    return {
        "job_id": job_id,
        "title": brief.title,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": {"use": policy.use,
                   "opt_in_training_data_only": policy.opt_in_training_data_only},
        "contributors": contributors(credit, parts),
        "verdict": _verdict(policy.use, items, problems),
        "shots": shots,
        "assets": asset_rows(entries),
        "checked": [item.model_dump() for item in items],
        "attribution": credit,
        "ledger": {"entries": len(entries),
                   "head_hash": entries[-1].get("hash") if entries else None,
                   "intact": not problems, "problems": problems},
    }


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``rights.json`` and ``rights.html`` into `out_dir`.

    Args:
        report: what :func:`build_report` returned.
        out_dir: the folder (created when missing).

    Returns:
        The paths of the JSON and HTML files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / "rights.json", out_dir / "rights.html"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def asset_rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ledger entry whose record has an output.

    Args:
        entries: ledger entries.

    Returns:
        Rows with seq, kind, shot, model_id, license, holder, commercial_use, adapters,
        inputs (sha256 and holder each), output (sha256), media_type, cache_hit.
    """
    rows = []
    for entry in entries:
        record = record_of(entry)
        output = get(record, "output", {})
        if not output:
            continue
        model = get(record, "model", {})
        rights = get(model, "rights", {})
        rows.append({
            "seq": entry.get("seq"),
            "kind": entry.get("kind"),
            "shot": entry.get("shot_id") or "",
            "model_id": get(model, "model_id", ""),
            "license": get(rights, "license", ""),
            "holder": holder_of(model),
            "commercial_use": bool(get(rights, "commercial_use", False)),
            "adapters": [get(card, "model_id", "") for card in cards(record)[1:]],
            "inputs": [{"sha256": get(asset, "sha256", ""),
                        "holder": str(get(get(asset, "rights", {}), "rights_holder", ""))}
                       for asset in get(record, "inputs", [])],
            "output": get(output, "sha256", ""),
            "media_type": get(output, "media_type", ""),
            "cache_hit": bool(entry.get("cache_hit")),
        })
    return rows


def _ledger_items(entries: list[dict[str, Any]], policy: PolicyReport) -> list[PolicyItem]:
    """Models and adapters the ledger shows that the policy gate did not check, judged now.

    Their opt-in status is not in the ModelCard, so under ``opt_in_training_data_only`` they
    count as not opt-in.
    """
    checked = {item.id for item in policy.items}
    found: dict[str, PolicyItem] = {}
    for entry in entries:
        for card in cards(record_of(entry)):
            model_id = str(get(card, "model_id", ""))
            if not model_id or model_id in checked:
                continue
            if model_id not in found:
                found[model_id] = _card_item(card, model_id)
            found[model_id].fields.append(f"ledger seq {entry.get('seq')}")
    for item in found.values():
        judge(item, policy.use, policy.opt_in_training_data_only)
    return list(found.values())


def _card_item(card: dict[str, Any], model_id: str) -> PolicyItem:
    rights = get(card, "rights", {})
    card_kind = get(card, "kind", "")
    kind: ItemKind = ("voice" if card_kind == "tts"
                      else "adapter" if card_kind in ("adapter", "ip_adapter") else "model")
    statement = get(rights, "training_data", "") or "not stated"
    return PolicyItem(kind=kind, id=model_id, license=get(rights, "license", "") or "unknown",
                      holder=holder_of(card),
                      commercial_use=bool(get(rights, "commercial_use", False)),
                      training_data_opt_in=False,
                      training_data=f"{statement}; not checked by the policy gate")


def _verdict(use: str, items: list[PolicyItem], problems: list[str]) -> dict[str, Any]:
    """publish: no violation, every consent given, not internal, ledger intact.

    monetize: publishable, use is commercial and every item is cleared for commercial use.
    """
    blockers = [item.describe(v) for item in items for v in item.violations]
    blockers += [item.describe("no consent from the holder") for item in items
                 if item.consent is False and item.ok]
    if use == "internal":
        blockers.append('rights_policy.use is "internal": internal work is never published')
    blockers += [f"the ledger chain is broken: {problem}" for problem in problems]
    limits = [] if use == "commercial" else [
        f'rights_policy.use is "{use}": only "commercial" allows monetizing']
    limits += [item.describe("not cleared for commercial use") for item in items
               if not item.commercial_use]
    publish = not blockers
    monetize = publish and not limits
    reasons = [f"publish: {r}" for r in blockers] + [f"monetize: {r}" for r in limits]
    if not publish and not limits:
        reasons.append("monetize: the video may not be published")
    if monetize:
        reasons.append(f"all {len(items)} models and assets are cleared for commercial use, "
                       "every consent is given and the ledger chain is intact")
    return {"publish": publish, "monetize": monetize, "reasons": reasons}
