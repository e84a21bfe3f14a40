"""What the chat understands without a model that calls tools: a few short commands.

The embedded SmolLM2-135M chats but does not call tools (its chat template has no place for
them), so with it a message that is exactly one of these commands runs its tool directly and
the reply is written here, from the tool's answer. A message is a command only when it is the
whole message ("start the job", "ジョブを開始して"), never a phrase inside a longer one, so
"don't start the job yet" starts nothing. Besides the words below, a message whose every line
is `field: value` sets brief fields ("style: watercolour", "長さ: 10") and one of
`s002 field: value` lines changes a shot ("s002 camera_move: dolly_in").
"""

from __future__ import annotations

import json
import re
from typing import Any

from kantoku.agents.studio.chat_tools import ToolOutcome

_POLITE = re.compile(r"^(please|pls|ok|okay|now)[,\s]+|[,\s]+(please|now)$|[\s.!?。！？]+$",
                     re.IGNORECASE)

#: (tool, arguments, whole-message patterns) for each command.
COMMANDS: tuple[tuple[str, dict[str, Any], re.Pattern[str]], ...] = (
    ("start_job", {}, re.compile(
        r"^(?:(?:start|begin|run)(?: (?:the|a|my|this))?(?: job)?|start planning|plan it"
        r"|(?:ジョブ)?(?:を)?(?:開始|スタート|始め|はじめ)(?:て|して)?(?:ください)?)$",
        re.IGNORECASE)),
    ("get_plan", {}, re.compile(
        r"^(?:(?:show|read)(?: me)? (?:the )?plan|the plan|plan|shots|show(?: me)? the shots"
        r"|(?:計画|プラン|ショット)(?:を)?(?:見せて|教えて)?(?:ください)?)$", re.IGNORECASE)),
    ("job_status", {}, re.compile(
        r"^(?:status|progress|how is (?:it|the job) going|(?:進捗|状況)(?:は|を教えて)?)$",
        re.IGNORECASE)),
    ("explain_rights", {}, re.compile(
        r"^(?:(?:explain )?(?:the )?rights(?: (?:verdict|report))?"
        r"|(?:権利|ライツ)(?:は|を説明して)?)$", re.IGNORECASE)),
    ("propose", {"action": "approve"}, re.compile(
        r"^(?:approve(?: it| the plan)?|承認(?:して|する)?(?:ください)?)$", re.IGNORECASE)),
)


#: Brief fields by the names a director writes them.
BRIEF_NAMES = {"title": "title", "タイトル": "title", "logline": "logline", "story": "logline",
               "あらすじ": "logline", "style": "style", "スタイル": "style", "mood": "mood",
               "ムード": "mood", "duration": "duration_s", "duration_s": "duration_s",
               "length": "duration_s", "長さ": "duration_s", "尺": "duration_s",
               "location": "locations", "locations": "locations", "場所": "locations",
               "aspect": "aspect", "resolution": "resolution", "language": "language",
               "seed": "seed"}
_LINE = re.compile(r"^\s*([^\s:：=]+)\s*[:：=]\s*(.+?)\s*$")
_SHOT_LINE = re.compile(r"^\s*(s\d{3})[\s.]+([a-z_]+)\s*[:：=]\s*(.+?)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:s|sec|seconds?|秒)?$", re.IGNORECASE)


def _field_lines(text: str) -> tuple[str, dict[str, Any]] | None:
    """update_brief or edit_shot when every line of `text` is `field: value`."""
    lines = [line for line in text.splitlines() if line.strip()]
    shots = [_SHOT_LINE.match(line) for line in lines]
    if lines and all(shots) and len({m.group(1).lower() for m in shots if m}) == 1:
        changes = {m.group(2).lower(): _value(m.group(2).lower(), m.group(3))
                   for m in shots if m}
        return "edit_shot", {"shot_id": shots[0].group(1).lower() if shots[0] else "",
                             "changes": changes}
    fields: dict[str, Any] = {}
    for line in lines:
        match = _LINE.match(line)
        name = BRIEF_NAMES.get(match.group(1).lower()) if match else None
        if match is None or name is None:
            return None
        fields[name] = _value(name, match.group(2))
    return ("update_brief", fields) if fields else None


def _value(name: str, text: str) -> Any:
    """A field's value as written: a number, a list, or the words."""
    if name in ("locations", "characters"):
        return [part.strip() for part in re.split(r"[,、，]", text) if part.strip()]
    number = _NUMBER.match(text)
    if number is not None and name not in ("title", "logline", "style", "mood",
                                           "image_prompt", "description", "location"):
        value = float(number.group(1))
        return int(value) if value.is_integer() and name not in ("duration_s", "end_s",
                                                                 "start_s") else value
    return text


def match_command(text: str) -> tuple[str, dict[str, Any]] | None:
    """The (tool, arguments) `text` asks for as a whole, or None."""
    lines = _field_lines(text)
    if lines is not None:
        return lines
    words = " ".join(text.split())
    for _ in range(3):  # "please start the job now." → "start the job"
        words = _POLITE.sub("", words).strip()
    for name, arguments, pattern in COMMANDS:
        if pattern.match(words):
            return name, arguments
    return None


def _shown(value: Any) -> str:
    return str(value) if isinstance(value, str | int | float) else \
        json.dumps(value, ensure_ascii=False)


def command_reply(name: str, outcome: ToolOutcome, japanese: bool) -> str:
    """Words for a command's outcome (the tool's own words when it refused)."""
    answer = json.loads(outcome.content)
    if not outcome.ok:
        problems = "; ".join(answer.get("problems") or [])
        detail = f"{answer['error']}{': ' + problems if problems else ''}"
        return f"できませんでした: {detail}" if japanese else f"That did not work: {detail}."
    if name == "update_brief":
        brief = "; ".join(f"{k}: {_shown(v)}" for k, v in answer["brief"].items())[:1000]
        note = f" ({answer['note']})" if answer.get("note") else ""
        return (f"ブリーフを更新しました{note}。{brief}" if japanese else
                f"The brief now reads: {brief}{note}.")
    if name == "edit_shot":
        return (f"計画 v{answer['version']}: {answer['summary']}" if japanese else
                f"Plan version {answer['version']}: {answer['summary']}.")
    if name == "start_job":
        if japanese and answer["status"] == "awaiting_review":
            return (f"ジョブ {answer['job_id']} を開始しました。計画（{answer['shots']} ショット）"
                    "がレビューを待っています。")
        return answer["summary"][:1].upper() + answer["summary"][1:] + "."
    if name == "get_plan":
        lines = [f"{s['id']} {s['start_s']:g}–{s['end_s']:g} s: {s['shot_size']}, "
                 f"{s['camera_move']}{', ' + ', '.join(s['characters']) if s['characters'] else ''}"
                 f"{' at ' + s['location'] if s['location'] else ''}" for s in answer["shots"]]
        head = (f"計画 v{answer['version']}（{len(lines)} ショット）:" if japanese else
                f"Plan version {answer['version']}, {len(lines)} shots:")
        return "\n".join([head, *lines])
    if name == "job_status":
        done = f", {answer['shots_done']} of {answer['shots']} shots rendered" \
            if answer["shots"] else ""
        return f"Job {answer['job_id']} is {answer['status']}{done}." + \
            (f" Next: {answer['next']}." if answer.get("next") else "")
    if name == "explain_rights":
        items = [f"{i['kind']} {i['id']} ({i['license']}): {'ok' if i['ok'] else 'refused'}"
                 for i in answer["items"]]
        verdict = answer.get("verdict")
        said = [f"Rights policy: {answer['use']}.", *items]
        if verdict:
            said.append(f"Verdict: publish {verdict['publish']}, monetize "
                        f"{verdict['monetize']}.")
        said.append("What would change it: " + "; ".join(answer["would_change_it"]))
        return "\n".join(said)
    proposal = answer["proposed"]
    return ("承認ボタンを押すとレンダリングが始まります。" if japanese else
            f"Press Approve to {proposal['summary']}; nothing renders until you do.")
