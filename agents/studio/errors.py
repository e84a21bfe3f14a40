"""The studio's HTTP errors: a status, a message that names the field and says what to do, and a
stable reason code; how the project's error categories map to HTTP statuses; and request
bodies read as JSON and checked against a model, refused with such an error."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from kantoku.planner.planning.brief import describe_errors
from kantoku.services._core.errors import Category, KantokuError

Model = TypeVar("Model", bound=BaseModel)

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


async def request_json(request: Request) -> Any:
    """The request's body as JSON.

    Raises:
        ApiError: 400 REQUEST_INVALID when it is not JSON.
    """
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "the body is not JSON", "REQUEST_INVALID") from None


async def request_model(request: Request, model: type[Model], *, optional: bool = False,
                        **extra: Any) -> Model:
    """The request's JSON body as `model` (an empty body is the model's defaults when
    `optional`).

    Raises:
        ApiError: 400 REQUEST_INVALID naming the fields at fault (and `extra`).
    """
    if optional and not (await request.body()).strip():
        return model()
    try:
        return model.model_validate(await request_json(request))
    except ValidationError as exc:
        raise ApiError(400, describe_errors(exc), "REQUEST_INVALID", **extra) from None
