"""Three simulated weeks of upstream activity, a daily incremental ``dbt build`` and a
matcher run each night, checked every day against the sources.

Each day the generator (``scenario_support.World``, one seed) writes new leads and
registry persons, links by another system, claims, a person whose document changes,
link removals (someone else's and the matcher's own), deleted leads, late rows (leads
dated 5, 10 and 20 days back, a link and a claim dated a week back) and future-dated
rows (a lead two days ahead, a claim dated tomorrow): every kind of event at least twice,
the late lead dated 20 days back on the last day (21 days: the shortest run that has
them all). Then ``dbt build`` runs with
``as_of`` = that day, every error-level data test included (a failing one fails the
build, so the test), and the models are compared with an independent recomputation in
Python from the source tables (``scenario_support.Sources``): the red set, every backlog
interval, every day's metrics. Then the matcher drains the eligible backlog, its rows
dated 22:00 that day. On a few days, and on the last, a copy of the database is rebuilt
with ``--full-refresh`` and must hold exactly the incremental build's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import reliability_support as support
import scenario_support as scenario
from conftest import Database
from psycopg import sql

from matcher.run import MatchOptions, run_match

pytestmark = pytest.mark.reliability

SEED = 20240401
START = date(2024, 4, 1)
DAYS = 21
FULL_REFRESH_DAYS = {7, 14, DAYS}
DAILY_BUILD = ("build", "--exclude-resource-type", "unit_test")
MARTS = {
    "ops.cabinet_kpi_red_recovery_queue": "lead_source_pk",
    "ops.v_cabinet_kpi_red_recovery_metrics_daily": "metric_date",
    "kpi_red_intermediate.int_backlog_intervals": "lead_source_pk, interval_number",
    "kpi_red_intermediate.int_attempts_daily": "metric_date",
}


def marts(database: Database) -> dict[str, str]:
    """md5 of each mart's rows in key order, ``loaded_at`` (run metadata) left out."""
    statement = sql.SQL(
        "select md5(coalesce(string_agg((to_jsonb(t) - 'loaded_at')::text, '|'"
        " order by {order}), '')) from {table} as t"
    )
    return {
        table: database.scalar(statement.format(order=sql.SQL(order), table=sql.SQL(table)))
        for table, order in MARTS.items()
    }


def build(database: Database, day: date, *args: str, manifest: Any = None) -> None:
    database.dbt(*args, dbt_vars={"as_of": day.isoformat()}, manifest=manifest)


def check_against_sources(database: Database, day: date) -> None:
    sources = scenario.Sources.read(database)
    backlog = {
        row[0] for row in database.query("select lead_source_pk from ops.v_cabinet_kpi_red_backlog")
    }
    assert backlog == sources.red_now(), f"{day}: the backlog view is not the red set"
    eligible = database.query(
        "select lead_source_pk from ops.v_cabinet_kpi_red_backlog where is_eligible"
    )
    due = database.query("select lead_source_pk from kpi_red_interface.backlog_due")
    assert sorted(due) == sorted(eligible), f"{day}: backlog_due is not the eligible set"
    intervals = scenario.model_intervals(database)
    expected = sources.intervals()
    assert intervals == expected, (day, scenario.differences(expected, intervals))
    metrics = scenario.model_metrics(database)
    expected_metrics = sources.metrics(day)
    assert metrics == expected_metrics, (day, scenario.differences(expected_metrics, metrics))
    queue = dict(
        database.query(
            "select lead_source_pk, is_in_backlog from ops.cabinet_kpi_red_recovery_queue"
        )
    )
    in_backlog = {
        lead: any(interval.left_at is None for interval in intervals if interval.lead == lead)
        for lead in {interval.lead for interval in intervals}
    }
    assert queue == in_backlog, f"{day}: the queue is not one row per lead ever red"


def test_three_weeks_of_upstream_events_against_the_sources_and_a_full_refresh(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    database = make_database()
    database.execute(scenario.SOURCE_DDL)
    world = scenario.World(database, seed=SEED, start=START)
    world.add_persons(150, scenario.at(START - timedelta(days=60), 9))
    runs = {"claimed": 0, "matched": 0, "skipped": 0}
    # parsed once: a new `as_of` each day would make dbt parse the whole project again
    # (~1.2 s a build); the SQL is still compiled with each day's
    manifest = database.dbt_parse()
    for number in range(DAYS):
        day = START + timedelta(days=number)
        world.day(day)
        build(database, day, *DAILY_BUILD, manifest=manifest)
        check_against_sources(database, day)
        if number + 1 in FULL_REFRESH_DAYS:
            with support.cloned(database, tmp_path / f"full-{number + 1}") as rebuilt:
                build(rebuilt, day, "run", "--full-refresh")
                assert marts(rebuilt) == marts(database), f"{day}: incremental != full refresh"
        summary = run_match(
            database.conninfo,
            settings=database.settings,
            options=MatchOptions(limit=None, batch_size=50),
        )
        scenario.shift_run(database, summary.run_id, scenario.at(day, 22))
        runs["claimed"] += summary.claimed
        runs["matched"] += summary.matched
        runs["skipped"] += summary.skipped_changed
    leads, red = database.query(
        "select (select count(*) from cabinet.leads),"
        " (select count(*) from ops.v_cabinet_kpi_red_backlog)"
    )[0]
    print(
        f"\nscenario: {DAYS} days, {leads} leads at the end ({red} red), events"
        f" {dict(sorted(world.events.items()))}, matcher {runs}"
    )
    assert runs["matched"] > 50 and world.events["lead_deleted"] >= 10
    assert world.events["late_lead_20d"] and world.events["future_lead"]
    assert world.events["link_removed_matcher"] and world.events["link_removed_others"]
