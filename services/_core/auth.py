"""Optional bearer-token check (KANTOKU_AUTH_TOKEN), shared by grpc.aio and Ray Serve hosting."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

import grpc

from kantoku.services._core.errors import Category, KantokuError

# Probes and schema discovery (grpcurl, reflection clients) work without credentials.
OPEN_METHODS_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def check_token(metadata: Iterable[tuple[str, Any]] | None, expected: str | None) -> None:
    """Raise UNAUTHENTICATED unless `metadata` carries `authorization: Bearer <expected>`."""
    if not expected:
        return
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected):
                return
            raise KantokuError("the bearer token is wrong; check KANTOKU_AUTH_TOKEN",
                               "TOKEN_INVALID", Category.UNAUTHENTICATED)
    raise KantokuError("missing 'authorization: Bearer <token>' metadata; set KANTOKU_AUTH_TOKEN",
                       "TOKEN_MISSING", Category.UNAUTHENTICATED)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls without the right token before they reach a servicer."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_METHODS_PREFIXES):
            return handler
        try:
            check_token(handler_call_details.invocation_metadata, self._token)
        except KantokuError as err:
            return _rejecting_handler(handler, err)
        return handler


def _rejecting_handler(handler: grpc.RpcMethodHandler, err: KantokuError) -> Any:
    from kantoku.services._core.rpc import fail

    async def reject(request: Any, context: grpc.aio.ServicerContext) -> None:
        await fail(context, err)

    async def reject_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await fail(context, err)
        yield  # pragma: no cover - makes this an async generator

    kwargs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(reject, **kwargs)
