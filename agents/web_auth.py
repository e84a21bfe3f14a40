"""The token a product's web app asks for (KANTOKU_AUTH_TOKEN): where a request carries it (the
bearer header, the HttpOnly cookie `POST /v1/session` sets, or `?token=`) and the comparison.

Shared by the studio's HTTP routes and the avatar's WebSocket, which read it the same way."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

#: The cookie `POST /v1/session` sets, so a page (and its EventSource or WebSocket) need not
#: hold the token.
TOKEN_COOKIE = "kantoku_token"


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.strip().encode(), token.encode())


def given_token(headers: Mapping[str, str], cookies: Mapping[str, str],
                query: Mapping[str, str]) -> str:
    """The bearer header's token, else the session cookie's, else `?token=`'s ("" if none)."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return given
    return cookies.get(TOKEN_COOKIE) or query.get("token", "")
