"""The studio's chat: a director writes, an LLM answers and works on the brief, the job and its
plan through tools (`chat_tools.py`), on a small LangGraph graph::

    call_model ──tool calls──▶ run_tools ──▶ call_model ... ──no tool calls──▶ END

Every reply streams as it is written (`token` events); every change a tool made is a `change`
event and every proposal a `proposal` event. A turn makes at most `MAX_ROUNDS` model calls; the
last one is offered no tools, so a turn always ends with words.

The model is any OpenAI-compatible endpoint with tool calling (OPENAI_BASE_URL, OPENAI_API_KEY,
KANTOKU_LLM_MODEL, as for the planner), else the embedded SmolLM2-135M-Instruct, started once
for the studio. A model that small cannot be trusted with tools, so it is offered none (nor is
an endpoint that refused them), and the chat stays useful without them: a message that is a
command runs its tool directly (`chat_commands.py`), and when the first message of a new chat
brings no change, the director's words become the draft brief's logline.

Every LLM call (model, endpoint, tokens, latency, tool calls) is a `llm_call` entry in the
job's ledger; calls made before the chat has a job wait and are written when it gets one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from kantoku.agents.llm_chat import (
    EMBEDDED_MAX_TOKENS,
    REPLY_MAX_TOKENS,
    ChatFailure,
    ChatModels,
    ToolCall,
    stream_reply,
)
from kantoku.agents.studio.chat_commands import command_reply, match_command
from kantoku.agents.studio.chat_tools import (
    Workspace,
    call_tool,
    draft_of,
    logline_draft,
    new_draft,
    refused,
    tool_specs,
)
from kantoku.agents.studio.jobs import JobManager
from kantoku.planner.planning.endpoint import (
    Endpoint,
    LLMFailure,
    LLMSession,
    LLMSettings,
    llm_configured,
    llm_settings,
)
from kantoku.planner.rights.ledger import Ledger, open_ledger
from kantoku.services._core.errors import not_found, unavailable

log = logging.getLogger(__name__)

#: Model calls in one turn; the last is offered no tools.
MAX_ROUNDS = 4
#: Tool calls run from one answer of the model; more are answered "not run".
MAX_CALLS = 8
#: Earlier director messages (with their answers) the model sees again.
HISTORY_TURNS = 6

Event = tuple[str, dict[str, Any]]


@dataclass
class Chat:
    id: str
    workspace: Workspace
    #: Where its model is (kept for the chat's life; the settings are read each turn).
    llm: Endpoint
    model: str
    endpoint: str  # "embedded" | "configured"
    #: What the page shows: {"role", "content", "changes", "proposals"}.
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: What the model sees again: OpenAI messages, tool calls and results included.
    history: list[dict[str, Any]] = field(default_factory=list)
    #: LLM calls made before the chat had a job, for its ledger.
    unledgered: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False
    #: False once the endpoint refused tools: its chat goes on as the embedded model's does.
    tools: bool = True

    @property
    def uses_commands(self) -> bool:
        """Commands run without the model (it cannot call tools)."""
        return self.endpoint == "embedded" or not self.tools

    @property
    def job_id(self) -> str | None:
        return self.workspace.job_id

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "job_id": self.job_id, "model": self.model,
                "endpoint": self.endpoint, "language": self.workspace.language,
                "brief": self.workspace.draft, "messages": self.messages}


# -- the graph -------------------------------------------------------------------------------


class TurnState(TypedDict):
    #: This turn's messages: the director's, then the model's and the tools' answers.
    messages: Annotated[list[dict[str, Any]], operator.add]
    rounds: int
    calls: list[ToolCall]


@dataclass
class TurnOutcome:
    """What one turn said and did, kept in the chat however the turn ends."""

    messages: list[dict[str, Any]]
    records: list[dict[str, Any]] = field(default_factory=list)
    reply: str = ""
    failure: ChatFailure | None = None


@dataclass
class Turn:
    """What the graph's nodes reach during one turn of a chat."""

    chat: Chat
    session: LLMSession
    records: list[dict[str, Any]]
    text: list[str] = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        return self.chat.endpoint == "embedded"

    @property
    def tools(self) -> bool:
        return self.chat.tools and not self.embedded

    def prompt(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        system = embedded_prompt(self.chat) if self.embedded else system_prompt(self.chat)
        return [{"role": "system", "content": system}, *recent(self.chat.history), *messages]


def system_prompt(chat: Chat) -> str:
    workspace = chat.workspace
    language = {"ja": "Japanese (日本語で答えてください)", "en": "English"}.get(
        workspace.language or "", "the director's language")
    job = workspace.job
    if job is None:
        where = "No job yet: the brief below is a draft."
    else:
        shots = len(job.plan["shots"]) if job.plan else 0
        where = (f"Job {job.id} is {job.status}; plan version {job.plan_version}, "
                 f"{shots} shots.")
    brief = json.dumps(workspace.draft, ensure_ascii=False)
    return (
        "You are the assistant of kantoku's studio. You help a director turn an idea into a "
        "short video: write the brief, start a job (it plans the shots and stops for review), "
        "read and edit the plan, explain the rights report and say how the job is going. Act "
        "with the tools, and never claim a change you did not make with a tool. You cannot "
        "approve a plan or render anything yourself: call propose, and the director decides "
        "with a button. When a tool answers with an error, explain it in plain words and say "
        f"what would work. Keep answers short. Answer in {language}.\n\n"
        f"{where}\nBrief: {brief}")


def embedded_prompt(chat: Chat) -> str:
    """The embedded model's prompt: short, English, one task (it answers English best and
    cannot use tools; chat_commands.py runs the few commands it would need them for)."""
    logline = chat.workspace.draft.get("logline")
    idea = f" The idea so far: {logline}" if logline else ""
    return ("You help a film director plan a short video. Reply in one or two short sentences: "
            "say what you understood and ask one question about the video (length, style, "
            f"characters or places).{idea}")


def recent(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last `HISTORY_TURNS` turns of `history`, each from its director's message on."""
    starts = [i for i, m in enumerate(history) if m["role"] == "user"]
    return history[starts[-HISTORY_TURNS]:] if len(starts) > HISTORY_TURNS else history


async def call_model(state: TurnState, runtime: Runtime[Turn]) -> dict[str, Any]:
    turn = runtime.context
    # The embedded model is offered no tools: its chat template has no place for them.
    last = state["rounds"] + 1 >= MAX_ROUNDS or not turn.tools
    write = runtime.stream_writer

    def on_token(text: str) -> None:
        turn.text.append(text)
        write(("token", {"text": text}))

    reply = await stream_reply(turn.session, turn.prompt(state["messages"]),
                               None if last else tool_specs(), endpoint=turn.chat.endpoint,
                               max_tokens=EMBEDDED_MAX_TOKENS if turn.embedded else
                               REPLY_MAX_TOKENS, on_token=on_token, records=turn.records)
    if reply.record.get("tools_refused"):
        turn.chat.tools = False
    calls = reply.tool_calls
    if last and calls:  # offered none: a model that calls tools anyway is not obeyed
        reply.record["tool_calls"] = [{"name": c.name, "ok": False,
                                       "error": "not run: the last round offers no tools"}
                                      for c in calls]
        calls = []
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in calls]
    return {"messages": [message], "rounds": state["rounds"] + 1, "calls": calls}


async def run_tools(state: TurnState, runtime: Runtime[Turn]) -> dict[str, Any]:
    turn = runtime.context
    workspace = turn.chat.workspace
    record = turn.records[-1]
    answers = []
    for index, call in enumerate(state["calls"]):
        changes, proposals = len(workspace.changes), len(workspace.proposals)
        if index < MAX_CALLS:
            outcome = await call_tool(workspace, call.name, call.arguments)
        else:
            outcome = refused(f"not run: at most {MAX_CALLS} tool calls per answer")
        record["tool_calls"].append({"name": call.name, "ok": outcome.ok,
                                     **({"error": outcome.error} if outcome.error else {})})
        for change in workspace.changes[changes:]:
            runtime.stream_writer(("change", change))
        for proposal in workspace.proposals[proposals:]:
            runtime.stream_writer(("proposal", proposal))
        answers.append({"role": "tool", "tool_call_id": call.id, "content": outcome.content})
    return {"messages": answers, "calls": []}


def after_model(state: TurnState) -> str:
    return "run_tools" if state["calls"] else END


def build_graph() -> Any:
    graph = StateGraph(TurnState, context_schema=Turn)
    graph.add_node("call_model", call_model)
    graph.add_node("run_tools", run_tools)
    graph.add_edge(START, "call_model")
    graph.add_conditional_edges("call_model", after_model, ["run_tools", END])
    graph.add_edge("run_tools", "call_model")
    return graph.compile()


GRAPH = build_graph()


# -- chats -----------------------------------------------------------------------------------


class ChatManager:
    """The chats of one studio process, by id (kept in memory)."""

    def __init__(self, jobs: JobManager, ledger: Ledger | None = None) -> None:
        self.jobs = jobs
        self.models = ChatModels()
        self.chats: dict[str, Chat] = {}
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger()
        return self._ledger

    def get(self, chat_id: str) -> Chat | None:
        return self.chats.get(chat_id)

    async def start_model(self) -> None:
        """Have the model ready before the first chat (the embedded LLM loads in a second)."""
        if not llm_configured():
            await self.models.endpoint()

    async def close(self) -> None:
        await self.models.close()

    async def create(self, job_id: str | None, language: str | None) -> Chat:
        """A new chat, about `job_id` when given, else with an empty draft brief.

        Raises:
            KantokuError: NOT_FOUND for an unknown job; UNAVAILABLE when the model cannot be
                reached or named.
        """
        job = None
        if job_id is not None:
            job = self.jobs.get(job_id)
            if job is None:
                raise not_found(f"job_id: no job {job_id}", reason="JOB_NOT_FOUND",
                                job_id=job_id)
        endpoint, settings, kind = await self._endpoint()
        session = LLMSession(endpoint, settings)
        try:
            model = await session.check_model()
        except LLMFailure as exc:
            raise unavailable(f"the chat's model: {exc}", reason="LLM_UNAVAILABLE") from None
        finally:
            await session.close()
        draft = draft_of(job) if job is not None else new_draft(language)
        workspace = Workspace(self.jobs, draft, job_id=job_id, language=language)
        endpoint = dataclasses.replace(endpoint, model=model)
        chat = Chat(f"chat-{secrets.token_hex(6)}", workspace, endpoint, model, kind)
        self.chats[chat.id] = chat
        return chat

    async def _endpoint(self) -> tuple[Endpoint, LLMSettings, str]:
        try:
            return await self.models.endpoint()
        except Exception as exc:  # noqa: BLE001 - the embedded LLM could not start
            detail = getattr(exc, "message", None) or str(exc)
            raise unavailable(f"the chat's model could not start: {detail}",
                              reason="LLM_UNAVAILABLE") from None

    async def send(self, chat: Chat, text: str) -> AsyncIterator[Event]:
        """One turn: the director's `text` in; the reply's events out, `done` or `error` last."""
        if chat.busy:
            yield "error", {"detail": f"{chat.id} is still answering the last message; wait "
                            "for its done event", "reason": "CHAT_BUSY"}
            return
        chat.busy = True
        workspace = chat.workspace
        workspace.changes, workspace.proposals = [], []
        first = not any(m["role"] == "user" for m in chat.messages)
        chat.messages.append({"role": "user", "content": text, "changes": [], "proposals": []})
        outcome = TurnOutcome([{"role": "user", "content": text}])
        try:
            command = match_command(text) if chat.uses_commands else None
            if command is not None:
                async for event in self._command(chat, outcome, *command):
                    yield event
            else:
                async for event in self._model_turn(chat, outcome):
                    yield event
            acted = command is not None or any(c["ok"] for r in outcome.records
                                                for c in r["tool_calls"])
            if first and not acted:
                change = logline_draft(workspace, text)
                if change is not None:
                    yield "change", change
                    # Said in words too: a small model's reply may say nothing of it.
                    note = logline_note(chat, change)
                    text_note = f"\n\n{note}" if outcome.reply else note
                    outcome.reply += text_note
                    yield "token", {"text": text_note}
            if not outcome.reply and outcome.failure is None:
                outcome.reply = fallback_reply(workspace)
                yield "token", {"text": outcome.reply}
            await self._ledger_calls(chat, outcome.records)
            if outcome.failure is not None:
                yield "error", {"detail": outcome.failure.detail,
                                "reason": outcome.failure.reason}
            else:
                yield "done", {"reply": outcome.reply, "changes": workspace.changes,
                               "proposals": workspace.proposals, "job_id": chat.job_id,
                               "model": chat.model}
        finally:
            # Kept even when the director hung up mid-reply: what changed is in the transcript,
            # and calls not yet in the ledger are written with the next turn.
            chat.busy = False
            chat.unledgered.extend(outcome.records)
            failure = outcome.failure
            chat.messages.append({"role": "assistant", "content": outcome.reply,
                                  "changes": workspace.changes,
                                  "proposals": workspace.proposals,
                                  **({"error": failure.detail} if failure else {})})
            done = failure is None and outcome.messages[-1]["role"] == "assistant"
            chat.history.extend(outcome.messages if done else outcome.messages[:1])

    async def _command(self, chat: Chat, outcome: TurnOutcome, name: str,
                       arguments: dict[str, Any]) -> AsyncIterator[Event]:
        """A command run without the model: its tool, then words written from its answer."""
        workspace = chat.workspace
        answer = await call_tool(workspace, name, json.dumps(arguments))
        for change in workspace.changes:
            yield "change", change
        for proposal in workspace.proposals:
            yield "proposal", proposal
        outcome.reply = command_reply(name, answer, japanese(workspace))
        yield "token", {"text": outcome.reply}
        outcome.messages.append({"role": "assistant", "content": outcome.reply})

    async def _model_turn(self, chat: Chat, outcome: TurnOutcome) -> AsyncIterator[Event]:
        """The graph's turn: the model's words and tool calls, streamed as events."""
        turn: Turn | None = None
        try:
            turn = Turn(chat, LLMSession(chat.llm, llm_settings()), outcome.records)
            state: TurnState = {"messages": outcome.messages, "rounds": 0, "calls": []}
            async for mode, chunk in GRAPH.astream(state, context=turn,
                                                   stream_mode=["custom", "values"]):
                if mode == "custom":
                    yield chunk
                else:
                    outcome.messages = chunk["messages"]
        except ChatFailure as exc:
            outcome.failure = exc
        except Exception as exc:  # noqa: BLE001 - a bug or an unreachable model: said, not raised
            log.exception("chat %s failed", chat.id)
            reason = getattr(exc, "reason", "INTERNAL")
            outcome.failure = ChatFailure(getattr(exc, "message", None) or repr(exc), reason)
        finally:
            if turn is not None:
                outcome.reply = "".join(turn.text).strip()
                await turn.session.close()

    async def _ledger_calls(self, chat: Chat, records: list[dict[str, Any]]) -> None:
        """Write the turn's LLM calls (and any from before the job) to the job's ledger."""
        for record in records:
            record["chat_id"] = chat.id
        chat.unledgered.extend(records)
        records.clear()
        while chat.job_id is not None and chat.unledgered:
            await self.ledger.append_async(chat.job_id, "llm_call", data=chat.unledgered[0])
            chat.unledgered.pop(0)


def japanese(workspace: Workspace) -> bool:
    return workspace.language == "ja" or (workspace.language is None and
                                          workspace.draft.get("language") == "ja")


def logline_note(chat: Chat, change: dict[str, Any]) -> str:
    """What the chat did with a first message no tool used, and what the director can say."""
    fields = {d["field"]: d["to"] for d in change["diff"]}
    if japanese(chat.workspace):
        length = f"長さは{fields['duration_s']:g}秒、" if "duration_s" in fields else ""
        more = "「スタイル: 水彩画」のように書き足すか、" if chat.uses_commands else ""
        return (f"（メッセージをブリーフのあらすじにしました。{length}{more}"
                "「ジョブを開始して」で計画を始めます。）")
    length = f", {fields['duration_s']:g} s long" if "duration_s" in fields else ""
    more = 'add details as lines like "style: watercolour", or ' if chat.uses_commands else ""
    return (f"(I kept your message as the brief's logline{length}; {more}say \"start the job\" "
            "to plan it.)")


def fallback_reply(workspace: Workspace) -> str:
    """Words for a turn whose model said nothing: what changed, or where things stand."""
    if workspace.changes:
        done = "; ".join(c["summary"] for c in workspace.changes)
        return f"変更しました: {done}" if japanese(workspace) else f"Done: {done}."
    if workspace.job_id is None:
        return ("ブリーフを書いて「ジョブを開始」と言ってください。" if japanese(workspace) else
                "Tell me about the video; say \"start the job\" when the brief is ready.")
    return (f"ジョブ {workspace.job_id} の状況をお尋ねください。" if japanese(workspace) else
            f"Ask me about job {workspace.job_id}: its plan, its rights, its progress.")
