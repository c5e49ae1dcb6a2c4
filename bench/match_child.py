"""``kpi-red match`` as a child process, so its peak memory is its own.

Uses the console script when it has a ``match`` command; until then (or with
``python -m bench.match_child``) the same ``matcher.run.run_match`` the command calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.database import BIN_DIR, PROJECT_DIR, BenchDatabase
from bench.measure import ChildResult, run_child


def has_match_command() -> bool:
    from matcher import cli

    return "match" in getattr(cli.main, "commands", {})


def argv_for(*, limit: int, batch_size: int, near: bool = True) -> list[str]:
    near_flag = "--near" if near else "--no-near"
    if has_match_command():
        return [
            str(BIN_DIR / "kpi-red"),
            "match",
            "--limit",
            str(limit),
            "--batch-size",
            str(batch_size),
            near_flag,
            "--json",
        ]
    return [
        sys.executable,
        "-m",
        "bench.match_child",
        "--limit",
        str(limit),
        "--batch-size",
        str(batch_size),
        near_flag,
    ]


def run(
    database: BenchDatabase,
    *,
    limit: int,
    batch_size: int,
    near: bool = True,
    timeout_s: float = 1800,
) -> tuple[ChildResult, dict[str, Any]]:
    """Drain up to ``limit`` leads; the child's wall time, peak RSS and JSON summary."""
    child = run_child(
        argv_for(limit=max(limit, 1), batch_size=batch_size, near=near),
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


def main() -> None:
    import os

    from matcher import config
    from matcher.run import MatchOptions, run_match

    parser = argparse.ArgumentParser(prog="python -m bench.match_child")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--near", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    settings = config.load_settings(PROJECT_DIR)
    summary = run_match(
        os.environ["KPI_RED_DSN"],
        settings=settings,
        options=MatchOptions(limit=args.limit, batch_size=args.batch_size, near=args.near),
    )
    print(json.dumps(summary.to_json()))


if __name__ == "__main__":
    main()
