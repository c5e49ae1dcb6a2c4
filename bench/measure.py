"""Measurement plumbing: wall clocks, child processes with their own peak RSS, medians."""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Clock:
    """A stopwatch: ``with clock.timing(): ...`` then ``clock.seconds``."""

    seconds: float = 0.0

    @contextmanager
    def timing(self) -> Iterator[Clock]:
        started = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds = time.perf_counter() - started


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: its wall time, its own peak resident memory and CPU."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    peak_rss_mb: float
    cpu_s: float
    """User + system CPU seconds of the child (and of its own children it waited for)."""
    stdout: str
    stderr: str

    def check(self) -> ChildResult:
        if self.returncode == -9:
            raise RuntimeError(f"{' '.join(self.argv[:3])} ... killed after {self.seconds:.0f} s")
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(self.argv[:3])} ... exited {self.returncode}:\n{tail}")
        return self


def run_child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
) -> ChildResult:
    """Run ``argv`` to completion; peak RSS and CPU come from ``wait4`` for this child alone.

    ``getrusage(RUSAGE_CHILDREN)`` would report the maximum over every child ever waited
    for; ``wait4`` returns the rusage of exactly this process (Linux: ``ru_maxrss`` in KiB).
    Output goes to temporary files so a chatty child never blocks on a full pipe.
    """
    import tempfile

    merged = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, env=merged, cwd=cwd)
        timer = threading.Timer(timeout_s, process.kill) if timeout_s else None
        if timer is not None:
            timer.start()
        try:
            _pid, status, usage = os.wait4(process.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildResult(
            argv=tuple(argv),
            returncode=process.returncode,
            seconds=seconds,
            peak_rss_mb=usage.ru_maxrss / 1024,
            cpu_s=usage.ru_utime + usage.ru_stime,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def median_ms(action: Callable[[], Any], *, repeat: int = 5) -> tuple[float, list[float]]:
    """Run ``action`` ``repeat`` times; the median and every run, in milliseconds."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), runs


def self_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Step:
    """One row of the report table."""

    name: str
    seconds: float
    rows: int | None = None
    peak_rss_mb: float | None = None
    note: str = ""
    cpu_s: float | None = None
    """The step's own process's CPU seconds (a child's, from ``wait4``)."""
    server_cpu_s: float | None = None
    """The server's CPU seconds for the step (``database.server_cpu``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float | None:
        if not self.rows or self.seconds <= 0:
            return None
        return self.rows / self.seconds
