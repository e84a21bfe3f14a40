"""Who may call the studio: with KANTOKU_AUTH_TOKEN set, a bearer token (or the HttpOnly
cookie `POST /v1/session` trades it for, or `?token=` for EventSource); and how much a request
may send."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from kantoku.agents.studio.errors import ApiError
from kantoku.agents.web_auth import TOKEN_COOKIE, given_token, token_matches
from kantoku.services._core.settings import core_settings


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is refused (413) as it arrives, with
    or without a Content-Length (chunked uploads too)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0

        async def limited() -> Any:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.limit:
                    raise ApiError(413, f"the request is over the limit of {self.limit} bytes",
                                   "UPLOAD_TOO_LARGE")
            return message

        await self.app(scope, limited, send)


__all__ = ["TOKEN_COOKIE", "BodyLimit", "require_token", "token_matches"]


def require_token(request: Request) -> None:
    """With KANTOKU_AUTH_TOKEN set: the bearer header, else the session cookie, else ?token=."""
    token = core_settings().token
    if not token:
        return
    given = given_token(request.headers, request.cookies, request.query_params)
    if not token_matches(given, token):
        raise ApiError(401, "a bearer token is required: send `Authorization: Bearer "
                       "<KANTOKU_AUTH_TOKEN>` (or ?token= for EventSource, or sign in with "
                       "POST /v1/session)", "UNAUTHENTICATED")
