"""Run a stage of the matcher ahead of the next one, in a thread.

PostgreSQL and Python work on different cores: while the writer's statements run on the
server (psycopg releases the GIL while it waits), the thread reads and decides the next
batches. A bounded queue keeps memory flat; an exception in the thread is raised in the
consumer; leaving the block stops the thread and closes its generator (its connections)
in that thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


@contextmanager
def ahead(
    items: Iterable[T], *, depth: int = 2, name: str = "kpi-red-ahead"
) -> Iterator[Iterator[T]]:
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the consumer."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                # stopped early: the consumer has its own result or error to report
                with suppress(Exception):
                    close()

    def consume() -> Iterator[T]:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


def fan_out(
    items: Iterable[T],
    work: Callable[[Iterator[T]], None],
    *,
    workers: int,
    name: str,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Run ``work`` in ``workers`` threads at once, all pulling from one iterator over
    ``items``, until it is exhausted. The first error stops the others after the item
    each is on and is raised here; so is an interrupt of the calling thread.
    ``on_stop`` is called at once when that happens (and at the end): it must make
    ``items`` end, so a worker waiting for its next item is not left waiting."""
    source = iter(items)
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def shared() -> Iterator[T]:
        while not stop.is_set():
            with lock:
                try:
                    item = next(source)
                except StopIteration:
                    return
            yield item

    def stopping() -> None:
        stop.set()
        if on_stop is not None:
            on_stop()

    def run() -> None:
        try:
            work(shared())
        except BaseException as exc:  # raised in the calling thread
            errors.append(exc)
            stopping()

    threads = [
        threading.Thread(target=run, name=f"{name}-{number}", daemon=True)
        for number in range(1, workers + 1)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        stopping()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
