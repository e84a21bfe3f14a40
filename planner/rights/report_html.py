"""rights.html: the rights report as one self-contained page a producer reads.

In reading order: the verdict at a glance, the contributors (who, what, under which license,
their share), the verdict's reasons, the assets grouped by shot in time order, every item the
policy gate checked, and the ledger. Every table has a legend for its columns; hashes are
shortened to :data:`~kantoku.planner.rights.credits.SHORT_HASH` characters (rights.json keeps
them whole).
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, StrictUndefined

from kantoku.planner.rights.credits import SHORT_HASH

#: (column, what it means) for each table; the headers and the legends are both made from these.
CONTRIBUTOR_COLUMNS = (
    ("who", "the rights holder: a person, company or project"),
    ("what they contributed", "their models, voices, adapters, reference images and song that "
                              "made this video"),
    ("license", "the terms each contribution is used under"),
    ("share", "their part of the screen time (the rule is below the table), and of the song"),
)
ASSET_COLUMNS = (
    ("step", "the number of the ledger entry that recorded the asset (the command kantoku "
             "rights verify checks the chain of entries)"),
    ("made", "what kind of step made it: image (keyframe), video (clip), tts (speech), "
             "motion (visemes and gestures)"),
    ("model", "the registry id of the model or voice that made it"),
    ("license", "the model's license"),
    ("holder", "who holds the rights of the model"),
    ("adapters", "LoRA or IP-Adapter weights applied on top of the model"),
    ("inputs", f"the first {SHORT_HASH} hex characters of each input's sha256, with its rights "
               "holder when it came from outside (a reference image)"),
    ("output", f"the first {SHORT_HASH} hex characters of the asset's sha256; rights.json has "
               "the whole hash"),
    ("cache", "hit: reused from an earlier identical step instead of rendered again"),
)
CHECKED_COLUMNS = (
    ("kind", "model, voice, adapter, reference (image) or song"),
    ("id", "the registry id, or the file's name for references and songs"),
    ("used at", "where the brief, the plan or the ledger names it"),
    ("license", "its license"),
    ("holder", "who holds its rights"),
    ("commercial", "cleared for commercial use"),
    ("opt-in data", "its training data was given with explicit opt-in (registry items only)"),
    ("consent", "the holder agreed to this use (reference images only)"),
    ("ok", "it passes the brief's rights policy"),
    ("rule", "the rules it passes, or every rule it breaks"),
)


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS, every value escaped).

    Args:
        report: what :func:`kantoku.planner.rights.report.build_report` returned.
    """
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["short"] = lambda digest: (digest or "")[:SHORT_HASH]
    return env.from_string(_TEMPLATE).render(
        r=report, groups=asset_groups(report), contributor_columns=CONTRIBUTOR_COLUMNS,
        asset_columns=ASSET_COLUMNS, checked_columns=CHECKED_COLUMNS)


def asset_groups(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The asset rows under their shots: the plan's shots in time order, then the rest.

    Returns:
        [{title, rows}]: title is ``s001 · 0:00.00–0:02.00`` for a shot of the plan, the shot
        id for a shot the plan does not name, ``whole video`` for rows of no shot.
    """
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in report["assets"]:
        rows.setdefault(row["shot"], []).append(row)
    groups = [{"title": f"{shot['id']} · {clock(shot['start_s'])}–{clock(shot['end_s'])}",
               "rows": rows.pop(shot["id"], [])} for shot in report["shots"]]
    return groups + [{"title": shot_id or "whole video", "rows": left}
                     for shot_id, left in rows.items()]


def clock(seconds: float) -> str:
    """``m:ss.ss``, e.g. ``1:04.50``."""
    hundredths = round(seconds * 100)
    return f"{hundredths // 6000}:{hundredths % 6000 / 100:05.2f}"


_TEMPLATE = """{% macro yn(value) -%}
{{ '' if value is none else ('yes' if value else 'no') }}
{%- endmacro %}
{% macro head(columns) -%}
<tr>{% for name, _ in columns %}<th>{{ name }}</th>{% endfor %}</tr>
{%- endmacro %}
{% macro legend(columns) -%}
<dl class="legend">
{% for name, meaning in columns %}  <dt>{{ name }}</dt><dd>{{ meaning }}</dd>
{% endfor %}
</dl>
{%- endmacro %}
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rights report: {{ r.title }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Hiragino Sans",
       "Yu Gothic UI", "Noto Sans JP", "Noto Sans CJK JP", sans-serif; color: #1d1d1f;
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
tr.shot th { background: #e9edfb; font-weight: 600; }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
.legend { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem;
          font-size: .85rem; color: #555; margin: .5rem 0 1rem; }
.legend dt { font-weight: 600; } .legend dd { margin: 0; }
</style>
</head>
<body>
<h1>Rights report: {{ r.title }}</h1>
<p class="meta">job <code>{{ r.job_id }}</code> &middot; report date
<time datetime="{{ r.date }}">{{ r.date }}</time> (UTC) &middot; rights policy:
{{ r.policy.use }}{% if r.policy.opt_in_training_data_only %} &middot; opt-in training data
only{% endif %}</p>

<div class="badges">
  <span class="badge {{ 'yes' if r.verdict.publish else 'no' }}">
    publish: {{ 'yes' if r.verdict.publish else 'no' }}</span>
  <span class="badge {{ 'yes' if r.verdict.monetize else 'no' }}">
    monetize: {{ 'yes' if r.verdict.monetize else 'no' }}</span>
</div>

<h2 id="contributors">Contributors</h2>
{% if r.contributors %}
<table>
{{ head(contributor_columns) }}
{% for c in r.contributors %}
{% for part in c.contributed %}
<tr>{% if loop.first %}<td rowspan="{{ loop.length }}">{{ c.holder }}</td>{% endif %}
<td>{{ part.what }}</td><td>{{ part.license }}</td>
{% if loop.first %}<td rowspan="{{ loop.length }}">{{ c.share }}</td>{% endif %}</tr>
{% endfor %}
{% endfor %}
</table>
{{ legend(contributor_columns) }}
{% else %}
<p class="note">Nothing is recorded yet, so nobody is credited.</p>
{% endif %}
<p class="note">{{ r.attribution.rule }} Basis: {{ r.attribution.basis }}.</p>
{% if r.attribution.unattributed_shots %}
<p class="note">Shots with no recorded assets:
{{ r.attribution.unattributed_shots | join(', ') }}.</p>
{% endif %}

<h2 id="verdict">Why this verdict</h2>
<ul>
{% for reason in r.verdict.reasons %}  <li>{{ reason }}</li>
{% endfor %}
</ul>

<h2 id="assets">Assets by shot</h2>
{% if r.assets %}
{{ legend(asset_columns) }}
<table>
{{ head(asset_columns) }}
{% for group in groups %}
<tr class="shot"><th colspan="{{ asset_columns | length }}">{{ group.title }}</th></tr>
{% for row in group.rows %}
<tr><td>{{ row.seq }}</td><td>{{ row.kind }}</td><td><code>{{ row.model_id }}</code></td>
<td>{{ row.license }}</td><td>{{ row.holder }}</td><td>{{ row.adapters | join(', ') }}</td>
<td>{% for i in row.inputs %}<code>{{ i.sha256 | short }}</code>
{% if i.holder %} ({{ i.holder }}){% endif %}{% if not loop.last %}<br>{% endif %}
{% endfor %}</td>
<td><code>{{ row.output | short }}</code></td><td>{{ 'hit' if row.cache_hit else '' }}</td></tr>
{% else %}
<tr><td colspan="{{ asset_columns | length }}" class="note">no recorded assets</td></tr>
{% endfor %}
{% endfor %}
</table>
{% else %}
<p class="note">The ledger has no rendered assets yet.</p>
{% endif %}

<h2 id="checked">Models and assets checked</h2>
{{ legend(checked_columns) }}
<table>
{{ head(checked_columns) }}
{% for item in r.checked %}
<tr class="{{ '' if item.ok else 'bad' }}"><td>{{ item.kind }}</td>
<td><code>{{ item.id }}</code>{% if item.sha256 %} <code>{{ item.sha256 | short }}</code>
{% endif %}</td><td>{{ item.fields | join(', ') }}</td>
<td>{{ item.license }}</td><td>{{ item.holder }}</td><td>{{ yn(item.commercial_use) }}</td>
<td>{{ yn(item.training_data_opt_in) }}</td><td>{{ yn(item.consent) }}</td>
<td>{{ yn(item.ok) }}</td><td>{{ item.rule }}</td></tr>
{% endfor %}
</table>

<h2 id="ledger">Ledger</h2>
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
