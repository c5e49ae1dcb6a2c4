"""``matcher.pipeline.ahead``: order kept, errors raised in the consumer, early exit closes
the producer in its own thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from matcher import pipeline


def test_items_arrive_in_order() -> None:
    with pipeline.ahead(range(1000), depth=2) as items:
        assert list(items) == list(range(1000))


def test_a_producer_error_is_raised_in_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("the stream broke")

    with pytest.raises(ValueError, match="the stream broke"), pipeline.ahead(failing()) as items:
        assert next(items) == 1
        next(items)


def test_stopping_early_closes_the_producer_in_its_thread() -> None:
    closed_in: list[str] = []

    def endless() -> Iterator[int]:
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed_in.append(threading.current_thread().name)

    with pipeline.ahead(endless(), depth=1, name="producer") as items:
        assert next(items) == 0
    assert closed_in == ["producer"]


def test_stages_chain() -> None:
    def doubled(numbers: Iterator[int]) -> Iterator[int]:
        for number in numbers:
            yield number * 2

    with (
        pipeline.ahead(range(10)) as first,
        pipeline.ahead(doubled(first)) as second,
    ):
        assert list(second) == [number * 2 for number in range(10)]
