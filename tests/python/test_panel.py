"""The recovery panel: the JSON contract, the terminal panel and `kpi-red metrics`.

Pure tests build payloads from literal rows. The CLI tests read a database loaded with the
demo data, a few matcher attempts of known outcome, and real `dbt run` output; every
number the panel shows is compared with the metrics model itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner

from matcher import cli, panel
from matcher.cli import main

METRICS = "ops.v_cabinet_kpi_red_recovery_metrics_daily"
BACKLOG = "ops.v_cabinet_kpi_red_backlog"
CONTRACT_KEYS = [
    "today",
    "yesterday",
    "last_7_days",
    "current_backlog",
    "current_backlog_is_live",
    "what_to_do",
]
DAILY_KEYS = [
    "metric_date",
    "backlog_start",
    "new_backlog_in",
    "matched_out",
    "backlog_end",
    "net_change",
    "top_fail_reason",
]
ALERT_FLAGS = {
    "inflow_exceeding_recovery": "is_inflow_exceeding_recovery",
    "missing_identifiers_dominant": "is_missing_identifiers_dominant",
    "conflicts": "has_conflicts",
}


# --- a demo database, built once per pytest process (test_serve and test_browser too) ---

_BUILT: dict[str, Any] = {}


def built_demo_database(make_database: Callable[..., Any]) -> Any:
    """The schedule on the demo data, made once: `dbt run`, `kpi-red match`, `dbt run`."""
    if "database" not in _BUILT:
        from matcher import demo

        database = make_database()
        demo.load(database.conninfo, database.settings, size="demo", seed=42, reset=False)
        database.dbt("run")
        matched = CliRunner().invoke(main, ["match", "--json"], env=database.cli_env())
        assert matched.exit_code == 0, matched.output
        database.dbt("run")
        _BUILT["database"] = database
    return _BUILT["database"]


@pytest.fixture(scope="module")
def built_db(make_database: Callable[..., Any]) -> Any:
    return built_demo_database(make_database)


def model_rows(database: Any) -> dict[str, dict[str, Any]]:
    """The metrics model as the JSON would show it: {iso date: {column: value}}."""
    with database.connect() as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(f"select * from {METRICS} order by metric_date").fetchall()  # noqa: S608
    return {row["metric_date"].isoformat(): row for row in rows}


def expected_alerts(row: dict[str, Any]) -> list[str]:
    """The alert keys a model row's flags call for, in the panel's order."""
    return [key for key, flag in ALERT_FLAGS.items() if row[flag]]


def shown_value(text: str, label: str) -> str:
    """The value the panel prints after ``label`` (the first word after it)."""
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return line.split()[len(label.split())]


def signed(value: int) -> str:
    """How the panel and the page print a net change: +3, -2, 0."""
    return f"{value:+d}" if value else "0"


def run_cli(database: Any, *args: str) -> Any:
    return CliRunner().invoke(main, ["metrics", *args], env=database.cli_env())


# --- pure: the payload ------------------------------------------------------------------


def row(day: date, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys((*panel.DAILY_FIELDS, *panel.EXTRA_FIELDS), 0)
    base.update(
        metric_date=day,
        top_fail_reason=None,
        is_inflow_exceeding_recovery=False,
        is_missing_identifiers_dominant=False,
        has_conflicts=False,
    )
    base.update(values)
    return base


def test_payload_has_the_contract_shape_and_fills_missing_days_with_nulls() -> None:
    today = date(2024, 5, 10)
    rows = [
        row(today, backlog_start=10, new_backlog_in=4, matched_out=1, backlog_end=13),
        row(today - timedelta(days=1), backlog_end=10),
        row(today - timedelta(days=4), backlog_end=9),
        row(today - timedelta(days=30), backlog_end=1),  # outside the window: ignored
    ]
    payload = panel.build_payload(rows, local_today=date(2030, 1, 1))

    assert list(payload) == CONTRACT_KEYS
    assert list(payload["today"])[:7] == DAILY_KEYS
    assert payload["today"]["metric_date"] == "2024-05-10"
    assert payload["today"]["new_backlog_in"] == 4
    assert payload["yesterday"]["metric_date"] == "2024-05-09"
    # the backlog at the last build: the newest day's end
    assert (payload["current_backlog"], payload["current_backlog_is_live"]) == (13, False)
    live = panel.build_payload(rows, local_today=date(2030, 1, 1), live_backlog=14)
    assert (live["current_backlog"], live["current_backlog_is_live"]) == (14, True)
    days = payload["last_7_days"]
    assert [day["metric_date"] for day in days] == [
        (today - timedelta(days=6 - offset)).isoformat() for offset in range(7)
    ]
    assert [day["backlog_end"] for day in days] == [None, None, 9, None, None, 10, 13]
    gap = days[0]
    assert all(gap[key] is None for key in DAILY_KEYS[1:]) and gap["alerts"] == []
    json.dumps(payload)  # plain JSON types only


def test_no_rows_means_no_today_and_seven_empty_days_ending_on_the_local_date() -> None:
    payload = panel.build_payload([], local_today=date(2024, 2, 29))
    assert payload["today"] is None and payload["yesterday"] is None
    assert payload["current_backlog"] == 0
    assert payload["last_7_days"][-1]["metric_date"] == "2024-02-29"
    assert len(payload["last_7_days"]) == 7
    assert all(day["backlog_end"] is None for day in payload["last_7_days"])


def test_other_window_lengths_follow_the_contract_keys() -> None:
    today = date(2024, 5, 10)
    payload = panel.build_payload([row(today)], local_today=today, days=14)
    assert list(payload) == [*CONTRACT_KEYS, "last_14_days"]
    assert len(payload["last_14_days"]) == 14 and len(payload["last_7_days"]) == 7
    assert payload["last_14_days"][-1]["metric_date"] == "2024-05-10"


def test_alerts_say_what_is_wrong_in_words() -> None:
    entry = panel.daily(
        row(
            date(2024, 5, 10),
            new_backlog_in=9,
            matched_out=3,
            other_out=1,
            failed_attempts=5,
            failed_missing_identifiers=4,
            conflicts=2,
            is_inflow_exceeding_recovery=True,
            is_missing_identifiers_dominant=True,
            has_conflicts=True,
        )
    )
    messages = {alert["key"]: alert["message"] for alert in entry["alerts"]}
    assert messages == {
        "inflow_exceeding_recovery": (
            "More leads came in (9) than left the backlog (3 recovered + 1 other): "
            "it is not draining."
        ),
        "missing_identifiers_dominant": (
            "missing_identifiers dominates the failures (4 of 5 failed attempts): "
            "fix the data at the source."
        ),
        "conflicts": "2 conflicts: identifiers point at different persons.",
    }
    assert panel.daily(row(date(2024, 5, 10)))["alerts"] == []


def test_render_shows_the_numbers_the_trend_and_coloured_alerts() -> None:
    today = date(2024, 5, 10)
    rows = [
        row(today - timedelta(days=offset), backlog_end=100 + offset, net_change=-1)
        for offset in range(7)
    ]
    rows[0].update(new_backlog_in=7, matched_out=2, other_out=1, net_change=4)
    rows[0].update(top_fail_reason="no_match", has_conflicts=True, conflicts=1)
    rows[0].update(failed_attempts=9, failed_no_match=5, failed_name_mismatch=3, failed_conflict=1)
    payload = panel.build_payload(rows, local_today=today, live_backlog=123)
    text = panel.render(payload, time_zone="America/Lima")
    plain = click.unstyle(text)

    assert "2024-05-10 (America/Lima)" in plain
    for label, value in [
        ("Current backlog", "123"),
        ("Entered today", "7"),
        ("Recovered today", "2"),
        ("Other exits", "1"),
        ("Net change", "+4"),
        ("Failed today", "9"),
        ("Top fail reason", "no_match"),
    ]:
        assert shown_value(plain, label) == value
    assert "no_match 5 · name_mismatch 3 · conflict 1" in plain
    assert "Last 7 days   backlog █▇▆▅▃▂▁  106 → 100" in plain
    assert "● 1 conflict: identifiers point at different persons." in plain
    assert "\x1b[31m" in text  # red, for the TTY; click.echo drops it elsewhere


def test_render_says_where_the_current_backlog_comes_from() -> None:
    today = date(2024, 5, 10)
    at_build = click.unstyle(panel.render(panel.build_payload([row(today)], local_today=today)))
    assert "at the last dbt build (--live: now)" in at_build
    live = panel.build_payload([row(today)], local_today=today, live_backlog=5)
    assert "live, from the backlog view" in click.unstyle(panel.render(live))


def test_render_without_metrics_says_so() -> None:
    payload = panel.build_payload([], local_today=date(2024, 5, 10), live_backlog=3)
    plain = click.unstyle(panel.render(payload))
    assert "no metrics for this day yet: run dbt build" in plain
    assert "✓ no alerts" in plain


# --- the CLI on a real, dbt-built database ----------------------------------------------


def test_metrics_json_equals_the_models(built_db: Any) -> None:
    result = run_cli(built_db, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    model = model_rows(built_db)
    newest = max(model)

    assert list(payload) == CONTRACT_KEYS
    assert payload["today"]["metric_date"] == newest
    # right after a build, the last build's backlog is the view's (a dbt test holds it)
    live_count = built_db.scalar(f"select count(*) from {BACKLOG}")  # noqa: S608
    assert payload["current_backlog"] == payload["today"]["backlog_end"] == live_count > 0
    assert payload["current_backlog_is_live"] is False
    live = json.loads(run_cli(built_db, "--json", "--live").output)
    assert (live["current_backlog"], live["current_backlog_is_live"]) == (live_count, True)
    days = payload["last_7_days"]
    assert len(days) == 7 and days[-1]["metric_date"] == newest
    for day in [payload["today"], payload["yesterday"], *days]:
        source = model.get(day["metric_date"])
        if source is None:
            assert all(day[key] is None for key in DAILY_KEYS[1:])
            continue
        assert list(day)[:7] == DAILY_KEYS
        for key in (*DAILY_KEYS[1:], *panel.EXTRA_FIELDS):
            assert day[key] == source[key], (day["metric_date"], key)
    today = payload["today"]
    assert today["matched_out"] > 0 and today["failed_attempts"] > 0  # the matcher ran today
    assert [alert["key"] for alert in today["alerts"]] == expected_alerts(model[newest])


def test_metrics_panel_shows_the_models_numbers(built_db: Any) -> None:
    result = run_cli(built_db)
    assert result.exit_code == 0, result.output
    today = model_rows(built_db)[max(model_rows(built_db))]
    assert "\x1b[" not in result.output  # no colour off a TTY

    def shown(label: str) -> str:
        return shown_value(result.output, label)

    assert shown("Current backlog") == str(built_db.scalar(f"select count(*) from {BACKLOG}"))  # noqa: S608
    assert shown("Entered today") == str(today["new_backlog_in"])
    assert shown("Recovered today") == str(today["matched_out"])
    assert shown("Other exits") == str(today["other_out"])
    assert shown("Net change") == signed(today["net_change"])
    assert shown("Top fail reason") == (today["top_fail_reason"] or "—")
    assert shown("Failed today") == str(today["failed_attempts"])
    for reason in panel.FAIL_REASONS:  # every reason the model counts, name_mismatch too
        count = today[f"failed_{reason}"]
        assert (f"{reason} {count}" in result.output) == bool(count)
    alerts = [line for line in result.output.splitlines() if line.strip().startswith(("●", "✓"))]
    assert len(alerts) == max(1, len(expected_alerts(today)))
    if today["has_conflicts"]:
        assert f"● {today['conflicts']} conflict" in result.output


def test_days_option_widens_the_trend_and_the_json(built_db: Any) -> None:
    result = run_cli(built_db, "--json", "--days", "14")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert list(payload) == [*CONTRACT_KEYS, "last_14_days"]
    assert payload["last_14_days"][-7:] == payload["last_7_days"]
    text = run_cli(built_db, "--days", "14").output
    assert "Last 14 days" in text


def test_watch_redraws_until_ctrl_c_and_exits_zero(
    built_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", fake_sleep)
    result = run_cli(built_db, "--watch", "5")
    assert result.exit_code == 0, result.output
    assert sleeps == [5, 5]
    assert click.unstyle(result.output).count("Red KPI backlog recovery") == 2
    assert "Ctrl-C to stop" in result.output


@pytest.mark.timeout(60)
def test_watch_stops_on_a_real_sigint_with_exit_0(built_db: Any) -> None:
    command = [str(Path(sys.executable).with_name("kpi-red")), "metrics", "--watch", "1"]
    process = subprocess.Popen(
        command,
        env={**os.environ, **built_db.cli_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background by a shell without job
        # control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while "Ctrl-C to stop" not in process.stdout.readline():
            assert time.monotonic() < deadline and process.poll() is None
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors


def test_watch_json_prints_one_line_per_refresh(
    built_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("time.sleep", interrupt)
    result = run_cli(built_db, "--json", "--watch", "1")
    assert result.exit_code == 0
    assert list(json.loads(result.output.splitlines()[0])) == CONTRACT_KEYS


def test_a_read_only_role_suffices(built_db: Any) -> None:
    role = f"kpi_red_panel_{uuid.uuid4().hex[:8]}"
    built_db.execute(f"create role {role} login")
    try:
        built_db.execute(
            f"grant usage on schema ops to {role};"
            f" grant select on {METRICS}, {BACKLOG}, ops.kpi_red_settings to {role};"
            f" alter role {role} set default_transaction_read_only = on"
        )
        dsn = f"{built_db.conninfo} user={role}"
        result = CliRunner().invoke(main, ["metrics", "--json", "--dsn", dsn])
        # the backlog view runs with its owner's rights, so SELECT on the two models and the
        # settings dbt built with (the days' time zone) is enough
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["current_backlog"] > 0
    finally:
        built_db.execute(f"drop owned by {role}; drop role {role}")


def test_not_built_yet_is_one_clear_line_and_exit_1(make_database: Callable[..., Any]) -> None:
    database = make_database()
    result = run_cli(database)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f'Error: the metrics are not built yet: relation "{METRICS}" does not exist'
        " (run `dbt build` first)"
    ]
    watched = run_cli(database, "--watch", "1")
    assert watched.exit_code == 1 and "not built yet" in watched.output


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    dsn = "host=/nonexistent/socket dbname=x user=u password=hunter2 connect_timeout=2"
    result = CliRunner().invoke(main, ["metrics", "--dsn", dsn])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "hunter2" not in result.output


def test_metrics_help_ends_with_an_example() -> None:
    result = CliRunner().invoke(cli.main, ["metrics", "--help"])
    assert result.exit_code == 0
    assert "Example: kpi-red metrics --watch 60" in result.output
