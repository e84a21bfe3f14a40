"""Whom a job's video credits: screen-time shares per rights holder and contributors in words.

Read from the job's ledger records (``ProvenanceRecord`` as MessageToDict dicts), the policy
gate's items (reference and song names) and the plan's shot times; used by ``report.py``.
"""

from __future__ import annotations

from typing import Any

from kantoku.planner.planning.brief import Brief
from kantoku.planner.planning.plan import Plan
from kantoku.planner.rights.policy import PolicyItem

ATTRIBUTION_RULE = (
    "Each shot's screen time is split equally among the distinct rights holders of the models, "
    "voices, adapters and reference images that made that shot's assets (the ledger entries of "
    "the shot, cached ones included). A holder's share is the sum of its parts over all shots, "
    "as a percentage of the attributed screen time, so the shares add up to 100%. The song is "
    "credited separately: its holder holds 100% of the song in the soundtrack."
)
UNKNOWN_HOLDER = "(holder not stated)"
#: Characters of a sha256 shown to people (tables, contributors); files keep the full hash.
SHORT_HASH = 12
#: What a registry kind is called when a contribution is described.
KIND_NAMES = {"image": "image model", "video": "video model", "tts": "voice",
              "motion": "motion model", "llm": "language model", "adapter": "adapter",
              "ip_adapter": "IP-Adapter"}

#: One contribution: what it is and its license.
Part = dict[str, str]
#: Per shot, each rights holder and what they contributed to it (first seen first).
ShotParts = dict[str, dict[str, list[Part]]]


def get(message: dict[str, Any], name: str, default: Any = None) -> Any:
    """A field of a MessageToDict dict, by proto name or by its camelCase JSON name."""
    if name in message:
        return message[name]
    head, *rest = name.split("_")
    return message.get(head + "".join(part.title() for part in rest), default)


def record_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The ProvenanceRecord of a ledger entry, or an empty dict."""
    record = entry.get("record")
    return record if isinstance(record, dict) else {}


def cards(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The model card and every adapter card of a record."""
    found = [get(record, "model", {})]
    found += [get(use, "adapter", {}) for use in get(record, "adapters", [])]
    return [card for card in found if card]


def holder_of(message: dict[str, Any]) -> str:
    """The rights holder of a card or asset, or :data:`UNKNOWN_HOLDER`."""
    return str(get(get(message, "rights", {}), "rights_holder", "")) or UNKNOWN_HOLDER


def shot_times(entries: list[dict[str, Any]], plan: Plan | None) -> list[dict[str, Any]]:
    """Each shot's id, start_s and end_s in time order; empty when the plan is unknown.

    Args:
        entries: the job's ledger entries; the latest ``plan`` entry with ``data["plan"]`` is
            read when `plan` is not given.
        plan: the shot plan, when known.
    """
    if plan is not None:
        shots = [{"id": s.id, "start_s": s.start_s, "end_s": s.end_s} for s in plan.shots]
        return sorted(shots, key=lambda s: s["start_s"])
    for entry in reversed(entries):  # the latest plan (after repairs) wins
        stored = (entry.get("data") or {}).get("plan") if entry.get("kind") == "plan" else None
        if isinstance(stored, dict):
            try:
                shots = [{"id": str(s["id"]), "start_s": float(s["start_s"]),
                          "end_s": float(s["end_s"])} for s in stored["shots"]]
            except (KeyError, TypeError, ValueError):
                return []
            return sorted(shots, key=lambda s: s["start_s"])
    return []


def shot_parts(entries: list[dict[str, Any]], items: list[PolicyItem]) -> ShotParts:
    """Per shot, every rights holder of the models, adapters and outside inputs of its records.

    Args:
        entries: the job's ledger entries.
        items: the checked items; a reference image's sha256 gives an input its file name.
    """
    references = {item.sha256: item.id for item in items
                  if item.kind == "reference" and item.sha256}
    parts: ShotParts = {}
    for entry in entries:
        shot_id, record = entry.get("shot_id"), record_of(entry)
        if not shot_id or not record:
            continue
        found = [(holder_of(card), _card_part(card)) for card in cards(record)]
        found += [(holder_of(asset), _input_part(asset, references))
                  for asset in get(record, "inputs", [])
                  if get(get(asset, "rights", {}), "rights_holder")]
        shot = parts.setdefault(shot_id, {})
        for holder, part in found:
            made = shot.setdefault(holder, [])
            if part not in made:
                made.append(part)
    return parts


def _card_part(card: dict[str, Any]) -> Part:
    kind = str(get(card, "kind", ""))
    return {"what": f"{KIND_NAMES.get(kind, kind or 'model')} {get(card, 'model_id', '')}",
            "license": str(get(get(card, "rights", {}), "license", "")) or "not stated"}


def _input_part(asset: dict[str, Any], references: dict[str, str]) -> Part:
    digest = str(get(asset, "sha256", ""))
    name = references.get(digest)
    return {"what": f"reference image {name}" if name else f"input {digest[:SHORT_HASH]}",
            "license": str(get(get(asset, "rights", {}), "license", "")) or "not stated"}


def attribution(brief: Brief, items: list[PolicyItem], parts: ShotParts,
                shots: list[dict[str, Any]]) -> dict[str, Any]:
    """Screen-time shares per rights holder and the song's credit (see :data:`ATTRIBUTION_RULE`).

    Args:
        brief: the brief (the song's title).
        items: the checked items (the song item, when there is one).
        parts: what :func:`shot_parts` returned.
        shots: what :func:`shot_times` returned; when empty, every shot counts once.

    Returns:
        {rule, basis, attributed, shot_count, unattributed_shots, shares: [{holder, seconds,
        percent, shots}], soundtrack: [{holder, title, license, file, sha256, commercial_use,
        percent}]}.
    """
    durations = {s["id"]: s["end_s"] - s["start_s"] for s in shots}
    basis = "screen time in seconds"
    if not durations:
        durations = dict.fromkeys(parts, 1.0)
        basis = "shots (the plan is unknown, so every shot counts once)"
    weight: dict[str, float] = {}
    credited: dict[str, list[str]] = {}
    for shot_id, seconds in durations.items():
        holders = parts.get(shot_id, {})
        for holder in holders:
            weight[holder] = weight.get(holder, 0.0) + seconds / len(holders)
            credited.setdefault(holder, []).append(shot_id)
    percents = _percentages(weight)
    shares = [{"holder": h, "seconds": round(weight[h], 3), "percent": percents[h],
               "shots": credited[h]} for h in sorted(weight, key=lambda h: (-weight[h], h))]
    return {
        "rule": ATTRIBUTION_RULE,
        "basis": basis,
        "attributed": round(sum(weight.values()), 3),
        "shot_count": len(durations),
        "unattributed_shots": [s for s in durations if not parts.get(s)],
        "shares": shares,
        "soundtrack": [_song_credit(brief, item) for item in items if item.kind == "song"],
    }


def contributors(credit: dict[str, Any], parts: ShotParts) -> list[dict[str, Any]]:
    """Who made the video, in plain words: one row per rights holder, largest share first.

    Args:
        credit: what :func:`attribution` returned.
        parts: what :func:`shot_parts` returned.

    Returns:
        Rows {holder, contributed: [{what, license}], share (a sentence), screen_percent
        (None for a holder of the song only)}.
    """
    made: dict[str, list[Part]] = {}
    for shot in parts.values():
        for holder, found in shot.items():
            known = made.setdefault(holder, [])
            known += [part for part in found if part not in known]
    by_time = credit["basis"].startswith("screen time")
    rows: dict[str, dict[str, Any]] = {}
    for share in credit["shares"]:
        count = f"{len(share['shots'])} of {credit['shot_count']} shots"
        amount = (f"of the screen time ({share['seconds']:.1f} s in {count})" if by_time
                  else f"of the shots ({count})")
        rows[share["holder"]] = {"holder": share["holder"],
                                 "contributed": list(made.get(share["holder"], [])),
                                 "shares": [f"{share['percent']:.2f}% {amount}"],
                                 "screen_percent": share["percent"]}
    for song in credit["soundtrack"]:
        row = rows.setdefault(song["holder"], {"holder": song["holder"], "contributed": [],
                                               "shares": [], "screen_percent": None})
        title = f"the song “{song['title']}”" if song["title"] else "the song"
        digest = (song["sha256"] or "")[:SHORT_HASH]
        row["contributed"].append({"what": f"{title} ({song['file']}, sha256 {digest})",
                                   "license": song["license"]})
        row["shares"].append("100% of the song in the soundtrack")
    return [{"holder": r["holder"], "contributed": r["contributed"],
             "share": "; ".join(r["shares"]), "screen_percent": r["screen_percent"]}
            for r in rows.values()]


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
    """The song by its title, holder and sha256; ``file`` is its name, never its path."""
    return {"holder": item.holder, "title": brief.song.title if brief.song else "",
            "license": item.license, "file": item.id, "sha256": item.sha256,
            "commercial_use": item.commercial_use, "percent": 100.0}
