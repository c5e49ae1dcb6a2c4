"""Run dbt in-process, against the same project, profile and vars the matcher uses."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matcher.settings import Settings


class DbtError(Exception):
    """dbt ran and failed (a model or test error), or could not start."""

    def __init__(self, message: str, *, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)
        """One line per failed node: its name, type and first error line."""


@dataclass(frozen=True)
class NodeTime:
    """How long dbt spent executing one node (a model, test, seed or snapshot)."""

    name: str
    kind: str
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {"node": self.name, "kind": self.kind, "seconds": round(self.seconds, 3)}

    def __str__(self) -> str:
        return f"{self.name} {self.seconds:.1f} s"


SLOWEST_NODES = 3
"""How many of a build's slowest nodes a result keeps (``DbtResult.slowest``)."""


@dataclass(frozen=True)
class DbtResult:
    command: str
    succeeded: bool
    failures: tuple[str, ...]
    slowest: tuple[NodeTime, ...] = ()
    """The nodes that took longest to execute, slowest first (at most ``SLOWEST_NODES``)."""


def run(
    args: Sequence[str],
    *,
    settings: Settings,
    profiles_dir: Path | None = None,
    target: str | None = None,
    dbt_vars: dict[str, object] | None = None,
    target_path: Path | None = None,
    quiet: bool = True,
    exclude: Sequence[str] = (),
    exclude_resource_types: Sequence[str] = (),
    manifest: Any = None,
) -> DbtResult:
    """``dbt <args>`` for the project, with ``settings.cli_vars`` (``--vars``) and
    ``dbt_vars`` on top, ``--exclude`` for ``exclude`` and ``--exclude-resource-type`` for
    ``exclude_resource_types`` (both left out of the messages); raises DbtError naming
    each node that failed and why. ``manifest`` (from ``parse``, same profile and target)
    skips parsing: the SQL is still compiled with these vars."""
    argv = _argv(
        args,
        settings=settings,
        profiles_dir=profiles_dir,
        target=target,
        dbt_vars=dbt_vars,
        target_path=target_path,
        quiet=quiet,
    )
    if exclude:
        argv += ["--exclude", *exclude]
    if exclude_resource_types:
        argv += ["--exclude-resource-type", *exclude_resource_types]
    command = "dbt " + " ".join(args)
    outcome = _invoke(argv, settings=settings, manifest=manifest)
    if outcome.exception is not None:
        raise DbtError(f"{command} could not run: {_first_line(outcome.exception)}")
    results = getattr(outcome.result, "results", None) or ()
    failures = tuple(
        describe_failure(result)
        for result in results
        if str(result.status) in {"error", "fail", "runtime error"}
    )
    if not outcome.success:
        detail = "; ".join(failures[:5]) or "see dbt's log"
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        raise DbtError(f"{command} failed: {detail}{more}", failures=failures)
    return DbtResult(
        command=command, succeeded=True, failures=failures, slowest=slowest_nodes(results)
    )


def slowest_nodes(results: Sequence[Any], count: int = SLOWEST_NODES) -> tuple[NodeTime, ...]:
    """The ``count`` nodes of dbt's run results that took longest to execute."""
    timed = [
        NodeTime(
            name=str(result.node.name),
            kind=str(getattr(result.node, "resource_type", "node")),
            seconds=float(result.execution_time or 0.0),
        )
        for result in results
        if getattr(result, "node", None) is not None
    ]
    return tuple(sorted(timed, key=lambda node: -node.seconds)[:count])


def parse(
    *,
    settings: Settings,
    profiles_dir: Path | None = None,
    target: str | None = None,
    target_path: Path | None = None,
) -> Any:
    """``dbt parse`` (partial, when dbt's saved state allows): the project's manifest, for
    several ``run`` calls in a row on one target (each skips its own parse)."""
    argv = _argv(
        ["parse"],
        settings=settings,
        profiles_dir=profiles_dir,
        target=target,
        dbt_vars=None,
        target_path=target_path,
        quiet=True,
    )
    outcome = _invoke(argv, settings=settings, manifest=None)
    if outcome.exception is not None or not outcome.success:
        why = _first_line(outcome.exception) if outcome.exception else "see dbt's log"
        raise DbtError(f"dbt parse could not run: {why}")
    return outcome.result


def _argv(
    args: Sequence[str],
    *,
    settings: Settings,
    profiles_dir: Path | None,
    target: str | None,
    dbt_vars: dict[str, object] | None,
    target_path: Path | None,
    quiet: bool,
) -> list[str]:
    argv = [*args, "--project-dir", str(settings.project_dir)]
    if profiles_dir is not None:
        argv += ["--profiles-dir", str(profiles_dir)]
    if target:
        argv += ["--target", target]
    given = {**settings.cli_vars, **(dbt_vars or {})}
    if given:
        argv += ["--vars", json.dumps(given, default=str)]
    if target_path is not None:
        argv += ["--target-path", str(target_path), "--log-path", str(target_path / "logs")]
    if quiet:
        argv = ["--quiet", "--no-use-colors", *argv]
    return argv


def _invoke(argv: list[str], *, settings: Settings, manifest: Any) -> Any:
    from dbt.cli.main import dbtRunner

    previous = os.getcwd()
    try:
        os.chdir(settings.project_dir)
        # dbt's console lines (its errors, even with --quiet) go to stderr: stdout is
        # kpi-red's own (`--json` output stays JSON)
        with contextlib.redirect_stdout(sys.stderr):
            return dbtRunner(manifest=manifest).invoke(argv)
    finally:
        os.chdir(previous)


def describe_failure(result: Any) -> str:
    """``<node> (<type>): <first line of its error>``."""
    node = result.node
    kind = getattr(node, "resource_type", "node")
    return f"{node.name} ({kind}, {result.status}): {_first_line(result.message)}"


def _first_line(message: object) -> str:
    """The line of a dbt message that says what went wrong (not "Database Error in ...")."""
    lines = [line.strip() for line in str(message or "").splitlines() if line.strip()]
    for line in lines:
        if not line.endswith(")") or " Error in " not in line:
            return line[:300]
    return lines[0][:300] if lines else "no message"
