"""``kpi-red match`` draining the whole eligible backlog as a child process, so its peak
memory is its own."""

from __future__ import annotations

import json
from typing import Any

from bench.database import BIN_DIR, PROJECT_DIR, BenchDatabase
from bench.measure import ChildResult, run_child


def argv_for(*, batch_size: int, near: bool = True) -> list[str]:
    """The command a user runs to drain the backlog (``--limit 0``: all of it)."""
    return [
        str(BIN_DIR / "kpi-red"),
        "match",
        "--limit",
        "0",
        "--batch-size",
        str(batch_size),
        "--near" if near else "--no-near",
        "--json",
    ]


def run(
    database: BenchDatabase,
    *,
    batch_size: int,
    near: bool = True,
    timeout_s: float = 1800,
) -> tuple[ChildResult, dict[str, Any]]:
    """Drain the eligible backlog; the child's wall time, peak RSS and JSON summary."""
    child = run_child(
        argv_for(batch_size=batch_size, near=near),
        env=database.cli_env(),
        cwd=PROJECT_DIR,
        timeout_s=timeout_s,
    ).check()
    return child, parse_summary(child.stdout)


def parse_summary(stdout: str) -> dict[str, Any]:
    start = stdout.find("{")
    if start < 0:
        raise RuntimeError(f"the matcher printed no JSON summary: {stdout[-500:]!r}")
    return dict(json.JSONDecoder().raw_decode(stdout[start:])[0])
