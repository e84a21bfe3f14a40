"""prefetch: a worker thread runs ahead of the consumer without changing what it sees."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kantoku.services._core.streaming import prefetch


def test_items_arrive_in_order() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_an_error_in_the_producer_reaches_the_consumer_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken frame 3")

    seen = []
    with pytest.raises(ValueError, match="broken frame 3"):
        for item in prefetch(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_worker() -> None:
    before = threading.active_count()
    items = prefetch(iter(range(10_000)), depth=2)
    assert next(items) == 0
    items.close()
    assert threading.active_count() == before
