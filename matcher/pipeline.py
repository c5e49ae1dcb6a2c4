"""Run a stage of the matcher ahead of the next one, in a thread (or several).

PostgreSQL and Python work on different cores: while the writer's statements run on the
server (psycopg releases the GIL while it waits), the thread reads and decides the next
batches. A bounded queue keeps memory flat; an exception in the thread is raised in the
consumer; leaving the block stops the thread and closes its generator (its connections)
in that thread. A stage that waits on the server part of the time (the deciders' one-edit
lookups) runs in several threads, each on its own connection.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")

_DONE = object()


def close_quietly(iterator: object) -> None:
    """Close a generator (its ``finally`` runs in this thread); errors are dropped: the
    consumer has its own result or error to report."""
    close = getattr(iterator, "close", None)
    if close is not None:
        with suppress(Exception):
            close()


def taking(source: Iterator[T], *, lock: threading.Lock, stop: threading.Event) -> Iterator[T]:
    """The items of ``source``, one at a time under ``lock`` (several threads take from
    it), until it ends or ``stop`` is set."""
    while not stop.is_set():
        with lock:
            try:
                item = next(source)
            except StopIteration:
                return
        yield item


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def ahead(
    items: Iterable[T], *, depth: int = 2, name: str = "kpi-red-ahead"
) -> AbstractContextManager[Iterator[T]]:
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the consumer."""
    return stage_ahead(items, stage=iter, depth=depth, name=name)


@contextmanager
def stage_ahead(
    items: Iterable[T],
    *,
    stage: Callable[[Iterator[T]], Iterator[U]],
    workers: int = 1,
    depth: int = 2,
    name: str = "kpi-red-ahead",
) -> Iterator[Iterator[U]]:
    """Run ``stage`` in ``workers`` threads, each over its share of ``items`` (one
    iterator, an item to whichever thread asks first), at most ``depth`` outputs ahead of
    the consumer; with more than one worker, not in the order of ``items``. The first
    error is raised in the consumer; leaving the block stops every thread, closes its
    stage in that thread, and the last thread closes ``items``."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    source = iter(items)
    lock = threading.Lock()
    running = workers

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        nonlocal running
        share = taking(source, lock=lock, stop=stop)
        outputs = stage(share)
        finished = False
        try:
            for item in outputs:
                if not put(item):
                    break
            else:
                finished = True
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            # stopped early: the consumer has its own result or error to report
            close_quietly(outputs)
            with lock:
                running -= 1
                last = running == 0
            if last:
                close_quietly(source)
                if finished:
                    put(_DONE)

    def consume() -> Iterator[U]:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]

    threads = [
        threading.Thread(
            target=produce, name=name if workers == 1 else f"{name}-{number}", daemon=True
        )
        for number in range(1, workers + 1)
    ]
    for thread in threads:
        thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        for thread in threads:
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

    def stopping() -> None:
        stop.set()
        if on_stop is not None:
            on_stop()

    def run() -> None:
        try:
            work(taking(source, lock=lock, stop=stop))
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


@contextmanager
def tuned_interpreter() -> Iterator[None]:
    """The interpreter set for a run, restored after.

    - Collect rarely: a run allocates millions of short-lived objects that reference
      counting frees; a batch keeps tens of thousands alive, so the cyclic collector's
      default threshold (700 net allocations) ran it dozens of times per batch: measured,
      40% of the decision time. Memory stays flat: nothing cyclic is made per lead.
    - Switch threads often: a stage waiting on PostgreSQL gets the GIL back only when the
      running stage yields it, by default every 5 ms, and a batch makes several round
      trips. Measured on a 100k-lead drain: 5.8 s with 5 ms, 4.5 s with 0.2 ms.
    """
    thresholds = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    gc.freeze()  # what exists before the run is never traversed again
    gc.set_threshold(200_000, 20, 100)
    sys.setswitchinterval(0.0002)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
