"""Run dbt in-process, against the same profile the matcher uses."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matcher.config import Settings


class DbtError(Exception):
    """dbt ran and failed (a model or test error), or could not start."""


@dataclass(frozen=True)
class DbtResult:
    command: str
    succeeded: bool
    failures: tuple[str, ...]


def run(
    args: Sequence[str],
    *,
    settings: Settings,
    profiles_dir: Path | None = None,
    target: str | None = None,
    dbt_vars: dict[str, object] | None = None,
    target_path: Path | None = None,
    quiet: bool = True,
) -> DbtResult:
    """``dbt <args>`` for the project; raises DbtError naming what failed."""
    from dbt.cli.main import dbtRunner

    argv = [*args, "--project-dir", str(settings.project_dir)]
    if profiles_dir is not None:
        argv += ["--profiles-dir", str(profiles_dir)]
    if target:
        argv += ["--target", target]
    if dbt_vars:
        argv += ["--vars", json.dumps(dbt_vars)]
    if target_path is not None:
        argv += ["--target-path", str(target_path), "--log-path", str(target_path / "logs")]
    if quiet:
        argv = ["--quiet", "--no-use-colors", *argv]
    previous = os.getcwd()
    try:
        os.chdir(settings.project_dir)
        outcome = dbtRunner().invoke(argv)
    finally:
        os.chdir(previous)
    command = "dbt " + " ".join(args)
    if outcome.exception is not None:
        raise DbtError(f"{command} could not run: {outcome.exception}")
    failures = tuple(
        f"{result.node.name}: {result.status}"
        for result in getattr(outcome.result, "results", None) or ()
        if str(result.status) in {"error", "fail", "runtime error"}
    )
    if not outcome.success:
        detail = "; ".join(failures[:5]) or "see dbt's log"
        raise DbtError(f"{command} failed: {detail}")
    return DbtResult(command=command, succeeded=True, failures=failures)
