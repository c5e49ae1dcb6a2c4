"""`kpi-red cycle`: one scheduled step, ``dbt build`` -> match -> ``dbt build``.

Guarded by a session advisory lock held on a dedicated connection, so two cycles never
overlap: the second fails at once with CycleBusyError (exit code 75 at the CLI). dbt runs
in-process, with the profile ``connection.dbt_target`` gives it. The second build
rebuilds what the match changed: the models and tests downstream of the tables the
cycle writes (``MATCH_WRITES``); their tests run there only, after the last rebuild of
what they test, so every data test runs once a cycle; so do the models there that the
match does not read (``REBUILT_AFTER_MATCH``: the daily metrics among them). After a
first build that succeeded, it folds into the backlog intervals only the leads the match
attempted (``SECOND_BUILD_VARS``): the first compared every source a moment before. With
``skip_history_tests`` neither build runs the data tests that read the whole history
(``HISTORY_TESTS``): the hourly schedule's, with one cycle a day that runs them. Neither
runs dbt's unit tests, which test the models' code on fixed rows (CI's work, not the
schedule's), unless ``DBT_EXCLUDE_RESOURCE_TYPES`` says otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from matcher import agreement, dbt
from matcher.connection import DbtTarget
from matcher.project import PACKAGE_NAME
from matcher.report import RunSummary
from matcher.run import MatchOptions, run_match
from matcher.settings import Settings
from matcher.store import admin

MATCH_WRITES = ("source:kpi_red+", "source:canon_links+", "source:canon_origin+")
"""What the match and the origin repair write (the attempts, the links, the origin rows)
and everything built on them: the second build's selection. The registry's keys and the
leads' stored keys are the next cycle's first build's (the matcher reads their changes
live meanwhile)."""


REBUILT_AFTER_MATCH = "tag:rebuilt_after_match"
"""The models downstream of ``MATCH_WRITES`` that neither the match nor the origin repair
reads (the daily metrics, the causes view, ORIGIN_MISSING, ...): the first build skips
them, since the second rebuilds them (``dbt_project.yml`` tags them)."""


SECOND_BUILD_VARS: dict[str, object] = {"backlog_changes": "match"}
"""The second build's vars: ``int_backlog_intervals`` recomputes only the leads whose
attempts were folded since the first build (what the match wrote), not every lead whose
sources changed: the first build compared those a moment before, and a change since is
the next build's (``dbt_project.yml``, ``backlog_changes``)."""


HISTORY_TESTS = "tag:whole_history"
"""The data tests that read a whole source, stored table or live view (every lead, link,
attempt or interval ever): their cost grows with the history, not with the hour's
changes (``whole_history`` in the YAML that declares each). ``kpi-red cycle
--skip-history-tests`` leaves them out of both builds; the schedule runs them once a day
(docs/operations.md). The tests it keeps cost the same at any size: they read the
catalog (a key or a NOT NULL that PostgreSQL enforces as rows are written), fixed values,
or tables of one row per day or setting."""


class BuildSelections(NamedTuple):
    first: list[str]
    """The first build's ``--select``: the given selection (every node when empty)."""
    first_exclude: list[str]
    """Its ``--exclude``: the tests the second build runs again on rebuilt models, and
    (unless a full refresh) the models it rebuilds that the match does not read."""
    second: list[str]
    """The second build's ``--select``: the part of the selection downstream of
    ``MATCH_WRITES``, tests included."""
    second_exclude: list[str]
    """Its ``--exclude``: ``HISTORY_TESTS`` when skipped, else nothing."""


def build_selections(
    select: Sequence[str], *, full_refresh: bool = False, history_tests: bool = True
) -> BuildSelections:
    """The two builds' node selections (dbt's ``a,b`` is an intersection, a space a
    union). A test downstream of ``MATCH_WRITES`` would judge in the first build a model
    the second build replaces; it runs in the second only (the first build's verdicts
    never stop the match: see ``run_cycle``). So do the models ``REBUILT_AFTER_MATCH``,
    except in a full refresh, which only the first build does. Without ``history_tests``
    both builds leave out ``HISTORY_TESTS``."""
    first = list(select)
    second = [f"{given},{written}" for given in first for written in MATCH_WRITES] or list(
        MATCH_WRITES
    )
    first_exclude = [f"{written},resource_type:test" for written in MATCH_WRITES]
    if not full_refresh:
        first_exclude.append(REBUILT_AFTER_MATCH)
    second_exclude = [] if history_tests else [HISTORY_TESTS]
    return BuildSelections(first, [*first_exclude, *second_exclude], second, second_exclude)


class CycleBusyError(Exception):
    """Another `kpi-red cycle` holds the lock on this database."""


@dataclass
class CycleReport:
    steps: list[tuple[str, float]]
    summary: RunSummary | None = None
    origins_repaired: int = 0
    """ORIGIN_MISSING persons given an origin row (whoever linked them)."""
    dbt_failures: list[str] = field(default_factory=list)
    """Each failed dbt node (``name (type, status): first error line``), both builds."""
    slowest: dict[int, tuple[dbt.NodeTime, ...]] = field(default_factory=dict)
    """The slowest nodes of each dbt build that succeeded, by the build's index in
    ``steps``: where an hour's build spends its time."""

    def to_json(self) -> dict[str, object]:
        return {
            "steps": [
                {
                    "step": name,
                    "seconds": round(seconds, 3),
                    **(
                        {"slowest": [node.to_json() for node in self.slowest[index]]}
                        if index in self.slowest
                        else {}
                    ),
                }
                for index, (name, seconds) in enumerate(self.steps)
            ],
            "match": self.summary.to_json() if self.summary else None,
            "origins_repaired": self.origins_repaired,
            "dbt_failures": self.dbt_failures,
        }


class CycleBuildError(Exception):
    """A dbt build of the cycle failed; the match step ran on the last good build if
    its relations were there. Carries the report of what ran."""

    def __init__(self, message: str, *, report: CycleReport) -> None:
        super().__init__(message)
        self.report = report


def run_cycle(
    conninfo: str,
    *,
    settings: Settings,
    dbt_target: DbtTarget,
    options: MatchOptions,
    full_refresh: bool = False,
    select: Sequence[str] = (),
    skip_history_tests: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> CycleReport:
    """``init`` → ``dbt build`` → match → repair origin → ``dbt build`` under a session
    advisory lock.

    ``select`` (dbt node selection) narrows both builds; in a host project it defaults to
    this package alone. The second build takes the part of it that the match changed
    (``build_selections``); ``skip_history_tests`` leaves ``HISTORY_TESTS`` out of both.
    A failed build does not stop the cycle when the relations the
    matcher reads are there (built by the last good build; the views are replaced in
    place, so they survive a failure elsewhere): it matches on them, runs the second
    build, then raises CycleBuildError naming the failed nodes.

    Raises CycleBusyError at once when another cycle holds the lock; the lock is released
    at the end, or by the server when this process dies.
    """
    report = CycleReport(steps=[])
    selections = build_selections(
        list(select) or ([f"package:{PACKAGE_NAME}"] if settings.is_package else []),
        full_refresh=full_refresh,
        history_tests=not skip_history_tests,
    )
    # the schedule runs no unit tests (a user's DBT_EXCLUDE_RESOURCE_TYPES wins)
    no_unit_tests = () if "DBT_EXCLUDE_RESOURCE_TYPES" in os.environ else ("unit_test",)
    errors: list[str] = []

    def step(name: str, work: Callable[[], object]) -> object:
        if on_step is not None:
            on_step(name)
        clock = time.perf_counter()
        result = work()
        if isinstance(result, dbt.DbtResult):
            report.slowest[len(report.steps)] = result.slowest
        report.steps.append((name, time.perf_counter() - clock))
        return result

    # parsed once, by the first build: the second skips dbt's parse (~0.3 s)
    parsed: list[object] = []

    def build(
        selection: Sequence[str],
        *extra: str,
        exclude: Sequence[str] = (),
        dbt_vars: dict[str, object] | None = None,
    ) -> dbt.DbtResult | None:
        try:
            if not parsed:
                parsed.append(
                    dbt.parse(
                        settings=settings,
                        profiles_dir=dbt_target.profiles_dir,
                        target=dbt_target.target,
                    )
                )
            return dbt.run(
                ["build", *(["--select", *selection] if selection else []), *extra],
                settings=settings,
                profiles_dir=dbt_target.profiles_dir,
                target=dbt_target.target,
                exclude=exclude,
                exclude_resource_types=no_unit_tests,
                manifest=parsed[0],
                dbt_vars=dbt_vars,
            )
        except dbt.DbtError as exc:
            errors.append(str(exc))
            report.dbt_failures.extend(exc.failures)
            if on_step is not None and report.summary is None:
                on_step(str(exc))
            return None

    with admin.cycle_lock(conninfo) as guard:
        if guard is None:
            raise CycleBusyError("another kpi-red cycle is running on this database")
        roles = settings.roles
        step(
            "init",
            lambda: admin.init_schema(
                guard, settings.tables, dbt_role=roles.dbt if roles.dbt_is_set else None
            ),
        )
        step(
            "dbt build",
            lambda: build(
                selections.first,
                *(["--full-refresh"] if full_refresh else []),
                exclude=selections.first_exclude,
            ),
        )
        missing = admin.missing_relations(guard) + admin.missing_sources(
            guard, tables=settings.tables
        )
        if missing:
            failed = "".join(f"{error}; " for error in errors)
            raise CycleBuildError(
                f"{failed}cannot match: {', '.join(missing)} missing", report=report
            )
        if errors and on_step is not None:
            on_step("the relations the matcher reads survived it: matching on the last good build")
        agreement.check(settings, admin.read_dbt_settings(guard))
        report.summary = step(  # type: ignore[assignment]
            "match", lambda: run_match(conninfo, settings=settings, options=options)
        )
        # every linked person gets an origin row, the matcher's or not (ORIGIN_MISSING)
        report.origins_repaired = step(  # type: ignore[assignment]
            "repair origin", lambda: admin.repair_origin(guard, tables=settings.tables)
        )
        # after a first build that compared every source, the second folds what the
        # match wrote (SECOND_BUILD_VARS); after a failed one, it compares every source
        second_vars = None if errors else SECOND_BUILD_VARS
        step(
            "dbt build",
            lambda: build(
                selections.second, exclude=selections.second_exclude, dbt_vars=second_vars
            ),
        )
    if errors:
        failed = "; ".join(dict.fromkeys(errors))  # the second build often fails the same
        raise CycleBuildError(f"{failed}; the match step ran on the last good build", report=report)
    return report
