"""What the chat understands without a model that calls tools: a few short commands.

The embedded SmolLM2-135M chats but does not call tools (its chat template has no place for
them), so with it a message that is exactly one of these commands runs its tool directly and
the reply is written here, from the tool's answer. A message is a command only when it is the
whole message ("start the job", "ジョブを開始して"), never a phrase inside a longer one, so
"don't start the job yet" starts nothing.
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


def match_command(text: str) -> tuple[str, dict[str, Any]] | None:
    """The (tool, arguments) `text` asks for as a whole, or None."""
    words = " ".join(text.split())
    for _ in range(3):  # "please start the job now." → "start the job"
        words = _POLITE.sub("", words).strip()
    for name, arguments, pattern in COMMANDS:
        if pattern.match(words):
            return name, arguments
    return None


def command_reply(name: str, outcome: ToolOutcome, japanese: bool) -> str:
    """Words for a command's outcome (the tool's own words when it refused)."""
    answer = json.loads(outcome.content)
    if not outcome.ok:
        problems = "; ".join(answer.get("problems") or [])
        detail = f"{answer['error']}{': ' + problems if problems else ''}"
        return f"できませんでした: {detail}" if japanese else f"That did not work: {detail}."
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
