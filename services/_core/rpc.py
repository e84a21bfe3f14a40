"""The one place that turns KantokuError into a gRPC status (with google.rpc.ErrorInfo) and back.

Servicer methods are decorated with `@rpc`. Their context argument is named `grpc_context` so the
same class runs on a plain grpc.aio server (context passed positionally) and as a Ray Serve
deployment (Serve passes `grpc_context=` when a method declares it).
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from kantoku.services._core.errors import (
    ERROR_DOMAIN,
    Category,
    KantokuError,
    category_for_status,
    from_os_error,
)

log = logging.getLogger(__name__)
STATUS_DETAILS_KEY = "grpc-status-details-bin"

F = TypeVar("F", bound=Callable[..., Any])


def to_status_proto(err: KantokuError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN,
                                       metadata=err.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=err.category.status_code.value[0], message=err.message,
                             details=[detail])


async def fail(grpc_context: Any, err: KantokuError) -> None:
    """End the RPC with `err`. On grpc.aio this raises; on Ray Serve it sets the status."""
    if hasattr(grpc_context, "abort_with_status"):
        await grpc_context.abort_with_status(rpc_status.to_status(to_status_proto(err)))
        return
    grpc_context.set_code(err.category.status_code)
    grpc_context.set_details(err.message)
    grpc_context.set_trailing_metadata(
        [(STATUS_DETAILS_KEY, to_status_proto(err).SerializeToString())]
    )


def _as_kantoku_error(exc: BaseException, method: str) -> KantokuError:
    if isinstance(exc, KantokuError):
        return exc
    if (known := from_os_error(exc)) is not None:
        log.warning("%s: %s", method, known.message)
        return known
    log.exception("unexpected error in %s", method)
    return KantokuError(f"internal error in {method}: {type(exc).__name__}; see the server log",
                        "INTERNAL", Category.INTERNAL)


def rpc(method: F) -> F:
    """Map exceptions raised by a servicer method to gRPC statuses (unary or server-streaming)."""
    name = method.__qualname__

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, grpc_context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, grpc_context):
                    yield item
            except Exception as exc:  # noqa: BLE001 - mapped to a status right here
                if _is_grpc_abort(exc):
                    raise
                await fail(grpc_context, _as_kantoku_error(exc, name))
                # Ray Serve's proxy applies the status with the next message it forwards, so a
                # stream that failed before its first message must send one (empty) to carry it.
                yield empty_response(method)

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, grpc_context: Any) -> Any:
        try:
            return await method(self, request, grpc_context)
        except Exception as exc:  # noqa: BLE001
            if _is_grpc_abort(exc):
                raise
            await fail(grpc_context, _as_kantoku_error(exc, name))
            return empty_response(method)

    return unary_wrapper  # type: ignore[return-value]


def _is_grpc_abort(exc: BaseException) -> bool:
    # grpc.aio's abort() raises AbortError; let it through untouched.
    return type(exc).__name__ == "AbortError"


def empty_response(method: Callable[..., Any]) -> Any:
    """An empty response message of `method`'s declared type (also for streams)."""
    hint = typing.get_type_hints(method).get("return")
    args = typing.get_args(hint)
    if args and isinstance(args[0], type):  # AsyncIterator[Response]
        return args[0]()
    return hint() if isinstance(hint, type) else None


# ---- client side ---------------------------------------------------------------------------


def error_from_rpc(exc: grpc.RpcError) -> KantokuError:
    """Rebuild a KantokuError (category, reason, message) from a failed call."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    message = exc.details() if hasattr(exc, "details") else str(exc)
    reason, metadata = code.name, {}
    try:
        status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        status = None
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
    if reason == code.name and (died := replica_died(code, message)) is not None:
        return died
    return KantokuError(message or code.name, reason, category_for_status(code), metadata)


#: How Ray says the replica serving a call went away (ActorDiedError, ActorUnavailableError);
#: the Serve proxy sends them as INTERNAL with Ray's multi-line text.
_REPLICA_DIED = ("The actor died unexpectedly", "ActorDiedError", "ActorUnavailableError",
                 "RayActorError")
_ACTOR_UNAVAILABLE = re.compile(r"\bThe actor \w* ?is unavailable\b")


def replica_died(code: grpc.StatusCode, message: str) -> KantokuError | None:
    """UNAVAILABLE (REPLICA_DIED), one line, when a failed call's status is Ray reporting that
    the replica serving it died; Serve restarts replicas, so the call is worth retrying."""
    if code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return None
    if not (any(marker in message for marker in _REPLICA_DIED)
            or _ACTOR_UNAVAILABLE.search(message)):
        return None
    return KantokuError("the service replica handling the call died (Ray Serve restarts it); "
                        "try again in a few seconds", "REPLICA_DIED", Category.UNAVAILABLE)
