"""``matcher.pipeline``: ``ahead`` keeps the order, raises errors in the consumer, closes the
producer in its own thread on an early exit; ``stage_ahead`` runs a stage in several
threads; ``fan_out`` hands each item to one worker."""

from __future__ import annotations

import threading
import time
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


def test_a_stage_in_several_threads_takes_each_item_once() -> None:
    """The matcher's deciders: each worker runs the stage over its share of the items
    and closes it in its own thread (its connection); the last one closes the items."""
    closed_in: list[str] = []
    source_closed_in: list[str] = []

    def numbers() -> Iterator[int]:
        try:
            yield from range(200)
        finally:
            source_closed_in.append(threading.current_thread().name)

    def doubled(items: Iterator[int]) -> Iterator[tuple[str, int]]:
        try:
            for item in items:
                time.sleep(0.001)  # each worker gets some of them
                yield threading.current_thread().name, item * 2
        finally:
            closed_in.append(threading.current_thread().name)

    with pipeline.stage_ahead(numbers(), stage=doubled, workers=2, name="decide") as outputs:
        seen = list(outputs)
    assert sorted(value for _, value in seen) == [item * 2 for item in range(200)]
    assert {name for name, _ in seen} == {"decide-1", "decide-2"}
    assert sorted(closed_in) == ["decide-1", "decide-2"]
    assert len(source_closed_in) == 1
    assert source_closed_in[0] in {"decide-1", "decide-2"}


def test_a_stage_error_in_one_thread_is_raised_and_stops_the_others() -> None:
    def failing(items: Iterator[int]) -> Iterator[int]:
        for item in items:
            if item == 50:
                raise ValueError("lookup failed")
            yield item

    taken: list[int] = []
    with (
        pytest.raises(ValueError, match="lookup failed"),
        pipeline.stage_ahead(range(1_000_000), stage=failing, workers=2) as outputs,
    ):
        for item in outputs:
            taken.append(item)
    assert len(taken) < 1_000_000


def test_fan_out_hands_each_item_to_exactly_one_worker() -> None:
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(items: Iterator[int]) -> None:
        for item in items:
            with lock:
                seen.append((threading.current_thread().name, item))

    pipeline.fan_out(range(1000), work, workers=3, name="writer")
    assert sorted(item for _, item in seen) == list(range(1000))
    assert {name for name, _ in seen} <= {"writer-1", "writer-2", "writer-3"}


def test_fan_out_raises_the_first_error_and_stops_the_other_workers() -> None:
    taken: list[int] = []

    def work(items: Iterator[int]) -> None:
        for item in items:
            taken.append(item)
            if item == 5:
                raise ValueError("batch 5 failed")

    with pytest.raises(ValueError, match="batch 5 failed"):
        pipeline.fan_out(range(1_000_000), work, workers=2, name="writer")
    assert len(taken) < 1_000_000  # the other worker stopped too


def test_fan_out_ends_a_source_still_waiting_when_a_worker_fails() -> None:
    """The matcher's stream waits for room under --limit while the writers hold its
    batches: a failed writer must end it (``on_stop``), or the other writer would wait
    for a next batch forever."""
    stopped = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        stopped.wait(timeout=30)  # waits for room, like the stream under --limit

    def work(batches: Iterator[int]) -> None:
        for _ in batches:
            raise RuntimeError("the connection is gone")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the connection is gone"):
        pipeline.fan_out(items(), work, workers=2, name="writer", on_stop=stopped.set)
    assert time.monotonic() - started < 10
