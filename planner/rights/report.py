"""The rights report of a job: may it be published or monetized, what made it, whom to credit.

Written next to the video as ``rights.json`` (for machines) and ``rights.html`` (one
self-contained page for people). Built from the policy gate's report and the job's ledger, so it
also covers models the render used that the gate did not see (a fallback, for instance).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan
from kantoku.planner.rights.ledger import verify_entries
from kantoku.planner.rights.policy import ItemKind, PolicyItem, PolicyReport, judge

ATTRIBUTION_RULE = (
    "Each shot's screen time is split equally among the distinct rights holders of the models, "
    "voices, adapters and reference images that made that shot's assets (the ledger entries of "
    "the shot, cached ones included). A holder's share is the sum of its parts over all shots, "
    "as a percentage of the attributed screen time, so the shares add up to 100%. The song is "
    "credited separately: its holder holds 100% of the song in the soundtrack."
)
UNKNOWN_HOLDER = "(holder not stated)"
#: Characters of a sha256 shown in tables.
SHORT_HASH = 12


def build_report(job_id: str, brief: Brief, policy: PolicyReport, entries: list[dict[str, Any]],
                 *, plan: Plan | None = None) -> dict[str, Any]:
    """Assemble the rights report of one job.

    Args:
        job_id: the job.
        brief: the job's brief (title, policy, song rights).
        policy: what the policy gate checked before the render.
        entries: the job's ledger entries in order (``Ledger.entries``).
        plan: the shot plan, for each shot's screen time; when not given, the plan stored in
            the ledger's ``plan`` entry (``data["plan"]``) is used, else every shot counts once.

    Returns:
        A JSON-ready dict: job_id, title, policy, verdict {publish, monetize, reasons},
        checked (every policy item, plus models the ledger shows that the gate did not check),
        assets (one row per ledger entry with an output), attribution {rule, basis, shares,
        soundtrack} and ledger {entries, head_hash, intact, problems}.
    """
    items = policy.items + _ledger_items(entries, policy)
    problems = verify_entries(entries)
    return {
        "job_id": job_id,
        "title": brief.title,
        "policy": {"use": policy.use,
                   "opt_in_training_data_only": policy.opt_in_training_data_only},
        "verdict": _verdict(policy.use, items, problems),
        "checked": [item.model_dump() for item in items],
        "assets": asset_rows(entries),
        "attribution": attribution(brief, items, entries, plan),
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


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS, every value escaped)."""
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(r=report)


def _get(message: dict[str, Any], name: str, default: Any = None) -> Any:
    """A field of a MessageToDict dict, by proto name or by its camelCase JSON name."""
    if name in message:
        return message[name]
    head, *rest = name.split("_")
    return message.get(head + "".join(part.title() for part in rest), default)


def _short(digest: str | None) -> str:
    return (digest or "")[:SHORT_HASH]


def _record(entry: dict[str, Any]) -> dict[str, Any]:
    record = entry.get("record")
    return record if isinstance(record, dict) else {}


def _cards(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The model card and every adapter card of a record."""
    cards = [_get(record, "model", {})]
    cards += [_get(use, "adapter", {}) for use in _get(record, "adapters", [])]
    return [card for card in cards if card]


def _holder(message: dict[str, Any]) -> str:
    return str(_get(_get(message, "rights", {}), "rights_holder", "")) or UNKNOWN_HOLDER


def asset_rows(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ledger entry whose record has an output.

    Args:
        entries: ledger entries.

    Returns:
        Rows with seq, kind, shot, model_id, license, holder, commercial_use, adapters,
        inputs (short sha256 and holder each), output (short sha256), media_type, cache_hit.
    """
    rows = []
    for entry in entries:
        record = _record(entry)
        output = _get(record, "output", {})
        if not output:
            continue
        model = _get(record, "model", {})
        rights = _get(model, "rights", {})
        rows.append({
            "seq": entry.get("seq"),
            "kind": entry.get("kind"),
            "shot": entry.get("shot_id") or "",
            "model_id": _get(model, "model_id", ""),
            "license": _get(rights, "license", ""),
            "holder": _holder(model),
            "commercial_use": bool(_get(rights, "commercial_use", False)),
            "adapters": [_get(card, "model_id", "") for card in _cards(record)[1:]],
            "inputs": [{"sha256": _short(_get(asset, "sha256")),
                        "holder": str(_get(_get(asset, "rights", {}), "rights_holder", ""))}
                       for asset in _get(record, "inputs", [])],
            "output": _short(_get(output, "sha256")),
            "media_type": _get(output, "media_type", ""),
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
        for card in _cards(_record(entry)):
            model_id = str(_get(card, "model_id", ""))
            if not model_id or model_id in checked:
                continue
            if model_id not in found:
                found[model_id] = _card_item(card, model_id)
            found[model_id].fields.append(f"ledger seq {entry.get('seq')}")
    for item in found.values():
        judge(item, policy.use, policy.opt_in_training_data_only)
    return list(found.values())


def _card_item(card: dict[str, Any], model_id: str) -> PolicyItem:
    rights = _get(card, "rights", {})
    card_kind = _get(card, "kind", "")
    kind: ItemKind = ("voice" if card_kind == "tts"
                      else "adapter" if card_kind in ("adapter", "ip_adapter") else "model")
    statement = _get(rights, "training_data", "") or "not stated"
    return PolicyItem(kind=kind, id=model_id, license=_get(rights, "license", "") or "unknown",
                      holder=_holder(card),
                      commercial_use=bool(_get(rights, "commercial_use", False)),
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


def attribution(brief: Brief, items: list[PolicyItem], entries: list[dict[str, Any]],
                plan: Plan | None) -> dict[str, Any]:
    """Screen-time shares per rights holder and the song's credit (see :data:`ATTRIBUTION_RULE`).

    Args:
        brief: the brief (the song's title).
        items: the checked items (the song item, when there is one).
        entries: the job's ledger entries.
        plan: the shot plan, for screen time; see :func:`build_report`.

    Returns:
        {rule, basis, attributed, unattributed_shots, shares: [{holder, seconds, percent,
        shots}], soundtrack: [{holder, title, license, file, commercial_use, percent}]}.
    """
    holders = _shot_holders(entries)
    durations = _shot_durations(entries, plan)
    basis = "screen time in seconds"
    if durations is None:
        durations = dict.fromkeys(holders, 1.0)
        basis = "shots (the plan is unknown, so every shot counts once)"
    weight: dict[str, float] = {}
    shots: dict[str, list[str]] = {}
    for shot_id, seconds in durations.items():
        for holder in holders.get(shot_id, ()):
            weight[holder] = weight.get(holder, 0.0) + seconds / len(holders[shot_id])
            shots.setdefault(holder, []).append(shot_id)
    percents = _percentages(weight)
    shares = [{"holder": h, "seconds": round(weight[h], 3), "percent": percents[h],
               "shots": shots[h]} for h in sorted(weight, key=lambda h: (-weight[h], h))]
    return {
        "rule": ATTRIBUTION_RULE,
        "basis": basis,
        "attributed": round(sum(weight.values()), 3),
        "unattributed_shots": [s for s in durations if not holders.get(s)],
        "shares": shares,
        "soundtrack": [_song_credit(brief, item) for item in items if item.kind == "song"],
    }


def _shot_holders(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Distinct rights holders per shot, from the models, adapters and inputs of its records."""
    holders: dict[str, list[str]] = {}
    for entry in entries:
        shot_id, record = entry.get("shot_id"), _record(entry)
        if not shot_id or not record:
            continue
        found = [_holder(card) for card in _cards(record)]
        found += [_holder(asset) for asset in _get(record, "inputs", [])
                  if _get(_get(asset, "rights", {}), "rights_holder")]
        known = holders.setdefault(shot_id, [])
        known += [h for h in dict.fromkeys(found) if h not in known]
    return holders


def _shot_durations(entries: list[dict[str, Any]], plan: Plan | None) -> dict[str, float] | None:
    if plan is not None:
        return {shot.id: shot.duration_s for shot in plan.shots}
    for entry in reversed(entries):  # the latest plan (after repairs) wins
        stored = (entry.get("data") or {}).get("plan") if entry.get("kind") == "plan" else None
        if isinstance(stored, dict):
            try:
                return {s["id"]: float(s["end_s"]) - float(s["start_s"]) for s in stored["shots"]}
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _percentages(weight: dict[str, float]) -> dict[str, float]:
    """Percentages with two decimals that add up to exactly 100 (largest remainder)."""
    total = sum(weight.values())
    if total <= 0:
        return dict.fromkeys(weight, 0.0)
    exact = {k: v * 10_000 / total for k, v in weight.items()}
    hundredths = {k: int(x) for k, x in exact.items()}
    left = 10_000 - sum(hundredths.values())
    for key in sorted(exact, key=lambda k: hundredths[k] - exact[k])[:left]:
        hundredths[key] += 1
    return {k: v / 100 for k, v in hundredths.items()}


def _song_credit(brief: Brief, item: PolicyItem) -> dict[str, Any]:
    return {"holder": item.holder, "title": brief.song.title if brief.song else "",
            "license": item.license, "file": Path(item.id).name,
            "commercial_use": item.commercial_use, "percent": 100.0}


_TEMPLATE = """{% macro yn(value) -%}
{{ '' if value is none else ('yes' if value else 'no') }}
{%- endmacro %}
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rights report: {{ r.title }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2rem; font-size: 1.2rem; }
.meta, .note { color: #555; } .note { font-size: .9rem; }
.badges { display: flex; gap: .8rem; margin: 1rem 0; }
.badge { padding: .4rem .9rem; border-radius: 6px; font-weight: 600; }
.yes { background: #e3f6e8; color: #146c2e; } .no { background: #fde7e7; color: #a11a1a; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e2e2e2;
         vertical-align: top; }
th { background: #f5f5f7; } tr.bad td { background: #fff4f4; }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.bar { background: #4a6cf7; height: .7rem; border-radius: 3px; }
</style>
</head>
<body>
<h1>Rights report: {{ r.title }}</h1>
<p class="meta">job <code>{{ r.job_id }}</code> &middot; rights policy: {{ r.policy.use }}
{% if r.policy.opt_in_training_data_only %} &middot; opt-in training data only{% endif %}</p>

<div class="badges">
  <span class="badge {{ 'yes' if r.verdict.publish else 'no' }}">
    publish: {{ 'yes' if r.verdict.publish else 'no' }}</span>
  <span class="badge {{ 'yes' if r.verdict.monetize else 'no' }}">
    monetize: {{ 'yes' if r.verdict.monetize else 'no' }}</span>
</div>
<ul>
{% for reason in r.verdict.reasons %}  <li>{{ reason }}</li>
{% endfor %}
</ul>

<h2>Models and assets checked</h2>
<table>
<tr><th>kind</th><th>id</th><th>used at</th><th>license</th><th>holder</th><th>commercial</th>
<th>opt-in data</th><th>consent</th><th>ok</th><th>rule</th></tr>
{% for item in r.checked %}
<tr class="{{ '' if item.ok else 'bad' }}"><td>{{ item.kind }}</td>
<td><code>{{ item.id }}</code></td><td>{{ item.fields | join(', ') }}</td>
<td>{{ item.license }}</td><td>{{ item.holder }}</td><td>{{ yn(item.commercial_use) }}</td>
<td>{{ yn(item.training_data_opt_in) }}</td><td>{{ yn(item.consent) }}</td>
<td>{{ yn(item.ok) }}</td><td>{{ item.rule }}</td></tr>
{% endfor %}
</table>

<h2>Assets</h2>
{% if r.assets %}
<table>
<tr><th>seq</th><th>kind</th><th>shot</th><th>model</th><th>license</th><th>holder</th>
<th>adapters</th><th>inputs</th><th>output</th><th>cache</th></tr>
{% for row in r.assets %}
<tr><td>{{ row.seq }}</td><td>{{ row.kind }}</td><td>{{ row.shot }}</td>
<td><code>{{ row.model_id }}</code></td><td>{{ row.license }}</td><td>{{ row.holder }}</td>
<td>{{ row.adapters | join(', ') }}</td>
<td>{% for i in row.inputs %}<code>{{ i.sha256 }}</code>
{% if i.holder %} ({{ i.holder }}){% endif %}{% if not loop.last %}<br>{% endif %}
{% endfor %}</td>
<td><code>{{ row.output }}</code></td><td>{{ 'hit' if row.cache_hit else '' }}</td></tr>
{% endfor %}
</table>
{% else %}
<p class="note">The ledger has no rendered assets yet.</p>
{% endif %}

<h2>Attribution</h2>
<p class="note">{{ r.attribution.rule }} Basis: {{ r.attribution.basis }}.</p>
<table>
<tr><th>rights holder</th><th>share</th><th></th><th>screen time</th><th>shots</th></tr>
{% for s in r.attribution.shares %}
<tr><td>{{ s.holder }}</td><td>{{ '%.2f' | format(s.percent) }}%</td>
<td style="width: 25%"><div class="bar" style="width: {{ s.percent }}%"></div></td>
<td>{{ s.seconds }}</td><td>{{ s.shots | join(', ') }}</td></tr>
{% endfor %}
</table>
{% if r.attribution.unattributed_shots %}
<p class="note">Shots with no recorded assets:
{{ r.attribution.unattributed_shots | join(', ') }}.</p>
{% endif %}
{% if r.attribution.soundtrack %}
<h2>Soundtrack</h2>
<table>
<tr><th>song</th><th>file</th><th>rights holder</th><th>license</th><th>commercial</th>
<th>share</th></tr>
{% for s in r.attribution.soundtrack %}
<tr><td>{{ s.title }}</td><td><code>{{ s.file }}</code></td><td>{{ s.holder }}</td>
<td>{{ s.license }}</td><td>{{ yn(s.commercial_use) }}</td>
<td>{{ '%.2f' | format(s.percent) }}% of the song</td></tr>
{% endfor %}
</table>
{% endif %}

<h2>Ledger</h2>
<p>{{ r.ledger.entries }} entries; chain {{ 'intact' if r.ledger.intact else 'BROKEN' }}
{% if r.ledger.head_hash %}; last hash <code>{{ r.ledger.head_hash }}</code>{% endif %}.</p>
{% if r.ledger.problems %}
<ul>
{% for p in r.ledger.problems %}  <li>{{ p }}</li>
{% endfor %}
</ul>
{% endif %}
</body>
</html>
"""
