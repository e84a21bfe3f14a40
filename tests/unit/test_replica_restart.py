"""A Ray Serve replica that dies mid-call is retried through its restart; giving up says so in
one line with exit 7. Ray's own error texts (what the Serve proxy sends as INTERNAL) are used.

Killing a real replica needs Ray Serve, which is not reliable on two cores within a test; the
mapping is tested here with the exact strings Ray produces.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError

from kantoku.services._core.client import ServiceClient
from kantoku.services._core.errors import Category, KantokuError
from kantoku.services._core.rpc import error_from_rpc

RAY_TEXTS = [str(ActorDiedError()),
             str(ActorUnavailableError("The actor's node was killed", b"\x01" * 16))]


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize("text", RAY_TEXTS)
def test_ray_actor_death_is_unavailable_in_one_line(text: str) -> None:
    err = error_from_rpc(FakeRpcError(grpc.StatusCode.INTERNAL, text))
    assert err.category is Category.UNAVAILABLE and err.category.exit_code == 7
    assert err.reason == "REPLICA_DIED" and err.transient
    assert "\n" not in err.message and "replica" in err.message


def test_other_internal_errors_stay_internal() -> None:
    err = error_from_rpc(FakeRpcError(grpc.StatusCode.INTERNAL, "internal error in X: KeyError"))
    assert err.category is Category.INTERNAL


class FlakyCall:
    """A call that fails like a killed replica `failures` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self, request: Any, **_: Any) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise FakeRpcError(grpc.StatusCode.INTERNAL, RAY_TEXTS[0])
        return "answer"


async def test_a_call_survives_a_replica_restart() -> None:
    call = FlakyCall(failures=4)  # ~4 s of backoff: a replica is back in about that
    async with ServiceClient("127.0.0.1:1") as client:
        client.retry_s = 60  # no clock in this test: the attempts decide
        assert await client.unary("video", call, None) == "answer"
    assert call.calls == 5


async def test_giving_up_says_unavailable() -> None:
    call = FlakyCall(failures=100)
    async with ServiceClient("127.0.0.1:1", attempts=2) as client:
        with pytest.raises(KantokuError) as info:
            await client.unary("video", call, None)
    assert info.value.category.exit_code == 7 and info.value.reason == "REPLICA_DIED"
    assert call.calls == 2
