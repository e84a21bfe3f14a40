"""The chat's routes: `/v1/chats`, a chat's transcript, and a message whose reply streams back
as Server-Sent Events over the POST response (read it with fetch, not EventSource).

Events: `token` {"text"} as the reply is written; `change` {"kind", "summary", "diff", ...}
for each change the agent made; `proposal` {"action", "job_id", "shot_id"?, "summary"} for an
approval or a regeneration the page offers as a button; then `done` {"reply", "changes",
"job_id"} or `error` {"detail", "reason"}.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from kantoku.agents.studio.chat import Chat, ChatManager
from kantoku.agents.studio.errors import ApiError, request_model
from kantoku.agents.studio.jobs import JobManager

#: Longest director's message, in characters.
MAX_TEXT_CHARS = 8000


class CreateChat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str | None = Field(default=None, description="a job to talk about; none: a new "
                               "chat holds a draft brief until it starts a job")
    language: Literal["ja", "en"] | None = Field(default=None, description="the reply's "
                                                 "language; none: the director's")


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="the director's message")


class ChatMessageView(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    changes: list[dict[str, Any]] = Field(default_factory=list)
    proposals: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None


class ChatView(BaseModel):
    id: str
    job_id: str | None
    model: str = Field(description="the model that answers")
    endpoint: Literal["embedded", "configured"] = Field(
        description="embedded: kantoku's own small LLM on this machine; configured: the "
        "OpenAI-compatible endpoint OPENAI_BASE_URL names")
    language: str | None = None
    brief: dict[str, Any] = Field(description="the chat's brief: the draft before a job, "
                                  "then the brief the next job would start from")
    messages: list[ChatMessageView]


def chat_router(jobs: JobManager, *, start_llm: bool = False) -> APIRouter:
    """The chat's routes over the studio's `jobs`; with `start_llm` the embedded LLM (when no
    endpoint is configured) starts with the app rather than with the first chat."""
    chats = ChatManager(jobs)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_llm:
            await chats.start_model()
        yield
        await chats.close()

    router = APIRouter(lifespan=lifespan)

    def chat_or_404(chat_id: str) -> Chat:
        chat = chats.get(chat_id)
        if chat is None:
            raise ApiError(404, f"{chat_id}: no such chat", "CHAT_NOT_FOUND", chat_id=chat_id)
        return chat

    errors: dict[int | str, dict[str, Any]] = {400: {}, 404: {}, 503: {}}

    @router.post("/chats", status_code=201, response_model=ChatView, responses=errors,
                 openapi_extra={"requestBody": {"required": False, "content": {
                     "application/json": {"schema": CreateChat.model_json_schema()}}}})
    async def create_chat(request: Request) -> Any:
        """A new chat: about a job, or (no job_id) with a draft brief it can start a job from."""
        body = await request_model(request, CreateChat, optional=True)
        chat = await chats.create(body.job_id, body.language)
        return JSONResponse(chat.view(), status_code=201)

    @router.get("/chats/{chat_id}", response_model=ChatView, responses=errors)
    async def get_chat(chat_id: str) -> Any:
        return chat_or_404(chat_id).view()

    @router.post("/chats/{chat_id}/messages", responses={**errors, 409: {}, 200: {
        "description": "the reply as Server-Sent Events: token, change, proposal, then done or "
                       "error", "content": {"text/event-stream": {}}}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": SendMessage.model_json_schema()}}}})
    async def post_message(chat_id: str, request: Request) -> Any:
        """Send the director's message; the reply streams back as events."""
        chat = chat_or_404(chat_id)
        text = (await request_model(request, SendMessage, field="text")).text.strip()
        if not text:
            raise ApiError(400, "text: empty; write the message to send", "TEXT_EMPTY",
                           field="text")
        if len(text) > MAX_TEXT_CHARS:
            raise ApiError(400, f"text: {len(text)} characters is over the limit of "
                           f"{MAX_TEXT_CHARS}; shorten it", "TEXT_TOO_LONG", field="text")
        if chat.busy:
            raise ApiError(409, f"{chat_id} is still answering the last message; wait for its "
                           "done event", "CHAT_BUSY")

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for name, data in chats.send(chat, text):
                yield {"event": name, "data": json.dumps(data, ensure_ascii=False, default=str)}

        return EventSourceResponse(stream(), ping=15)

    return router
