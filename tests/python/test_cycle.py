"""`kpi-red cycle`: init, dbt build, match, dbt build under an advisory lock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Database

from matcher.cli import CYCLE_BUSY_EXIT, main
from matcher.store import admin as store_admin
from matcher.store import base as store_base


@pytest.fixture(scope="module")
def demo_copy(make_database: Callable[..., Database]) -> Database:
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42)
    return database


def cycle_env(database: Database, tmp_path: Path) -> dict[str, str]:
    # dbt's artifacts go to a private target path: tests run side by side on one tree
    return {
        **database.cli_env(),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }


def test_cycle_runs_green_and_drains_the_eligible_backlog(
    demo_copy: Database, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["cycle", "--json"], env=cycle_env(demo_copy, tmp_path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [step["step"] for step in report["steps"]] == [
        "init",
        "dbt build",
        "match",
        "repair origin",
        "dbt build",
    ]
    assert report["match"]["claimed"] > 0 and report["match"]["matched"] > 0
    eligible = demo_copy.scalar(
        "select count(*) from ops.v_cabinet_kpi_red_backlog where is_eligible"
    )
    assert eligible == 0
    # the second build folded the attempts into the queue
    attempted = demo_copy.scalar(
        "select count(*) from ops.cabinet_kpi_red_recovery_queue where attempt_count > 0"
    )
    assert attempted == report["match"]["claimed"]
    # the second build (its run_results.json is the last) rebuilt what the match changed,
    # not the registry's keys nor the leads' stored keys; neither build ran unit tests
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    second = {result["unique_id"].split(".")[-1] for result in results}
    assert {"cabinet_kpi_red_recovery_queue", "int_backlog_intervals"} <= second
    assert {"v_cabinet_kpi_red_recovery_metrics_daily", "assert_backlog_view_rows"} <= second
    assert not {"person_keys", "junk_keys", "int_lead_identifiers__stored"} & second
    assert not [result for result in results if result["unique_id"].startswith("unit_test.")]
    # no password ever reached a file: the temporary profile is gone with the run
    assert not list(tmp_path.glob("**/profiles.yml"))


def test_a_second_cycle_exits_at_once_with_75(demo_copy: Database, tmp_path: Path) -> None:
    with store_base.connect(demo_copy.conninfo, autocommit=True) as holder:
        assert store_admin.try_cycle_lock(holder)  # a cycle is "running"
        result = CliRunner().invoke(main, ["cycle"], env=cycle_env(demo_copy, tmp_path))
        store_admin.release_cycle_lock(holder)
    assert result.exit_code == CYCLE_BUSY_EXIT == 75
    assert "another kpi-red cycle is running" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_second_build_selects_what_the_match_wrote_within_the_given_selection() -> None:
    from matcher.cycle import MATCH_WRITES, build_selections

    assert build_selections([]) == ([], list(MATCH_WRITES))
    first, second = build_selections(["package:kpi_red_recovery"])
    assert first == ["package:kpi_red_recovery"]
    assert second == [f"package:kpi_red_recovery,{written}" for written in MATCH_WRITES]
