"""The studio's HTTP errors: a status, a message that names the field and says what to do, and a
stable reason code; and how the project's error categories map to HTTP statuses."""

from __future__ import annotations

from typing import Any

from kantoku.services._core.errors import Category, KantokuError

HTTP_STATUS = {Category.INVALID_REQUEST: 400, Category.NOT_FOUND: 404,
               Category.RIGHTS_DENIED: 403, Category.UNAUTHENTICATED: 401,
               Category.RESOURCE_EXHAUSTED: 507, Category.UNAVAILABLE: 503,
               Category.DEADLINE_EXCEEDED: 504, Category.INTERNAL: 500}


class ApiError(Exception):
    """An answer other than 2xx: `{"detail": ..., "reason": ..., **extra}`."""

    def __init__(self, status: int, detail: str, reason: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason, self.extra = status, detail, reason, extra


def status_of(exc: KantokuError) -> int:
    return HTTP_STATUS.get(exc.category, 500)
