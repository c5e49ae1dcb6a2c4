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
    demo_copy: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matcher import dbt

    # each build's run_results.json, kept as it is written (the second overwrites it)
    builds: list[list[dict[str, object]]] = []
    real_run = dbt.run

    def run_and_keep_results(*args: object, **kwargs: object) -> object:
        outcome = real_run(*args, **kwargs)  # type: ignore[arg-type]
        results = json.loads((tmp_path / "target" / "run_results.json").read_text())
        builds.append(results["results"])
        return outcome

    monkeypatch.setattr(dbt, "run", run_and_keep_results)
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
    # the second build rebuilt what the match changed, not the registry's keys nor the
    # leads' stored keys; neither build ran unit tests
    first_results, second_results = builds
    # each build's step names its slowest nodes, timed as its run results time them
    build_steps = [step for step in report["steps"] if step["step"] == "dbt build"]
    for step, results in zip(build_steps, builds, strict=True):
        timed = sorted((float(str(result["execution_time"])) for result in results), reverse=True)
        assert [node["seconds"] for node in step["slowest"]] == [round(t, 3) for t in timed[:3]]
        names = {str(result["unique_id"]).split(".")[2] for result in results}
        assert {node["node"] for node in step["slowest"]} <= names
    assert "slowest" not in report["steps"][2]  # the match step
    first, second = (
        {str(result["unique_id"]) for result in results}
        for results in (first_results, second_results)
    )
    names = {unique_id.split(".")[-1] for unique_id in second}
    assert {"cabinet_kpi_red_recovery_queue", "int_backlog_intervals"} <= names
    assert {"v_cabinet_kpi_red_recovery_metrics_daily", "assert_backlog_view_rows"} <= names
    assert not {"person_keys", "junk_keys", "int_lead_identifiers__stored"} & names
    assert not [unique_id for unique_id in first | second if unique_id.startswith("unit_test.")]
    # every data test ran once: a test of what the second build rebuilds ran there only
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    data_tests = {
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and node["package_name"] == "kpi_red_recovery"
    }
    ran_tests = [unique_id for unique_id in [*first, *second] if unique_id.startswith("test.")]
    assert sorted(ran_tests) == sorted(data_tests)
    assert "test.kpi_red_recovery.assert_backlog_view_rows" in second - first
    # the models the first build skips: each is downstream of what the match writes (the
    # second build rebuilt it) and upstream of nothing the matcher reads
    skipped = {
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if "rebuilt_after_match" in node["config"].get("tags", [])
    }
    assert "model.kpi_red_recovery.v_cabinet_kpi_red_recovery_metrics_daily" in skipped
    assert skipped <= second - first
    (matcher,) = [
        unique_id
        for unique_id, exposure in manifest["exposures"].items()
        if exposure["name"] == "kpi_red_matcher"
    ]
    read, unvisited = set(), [matcher]
    while unvisited:
        for parent in manifest["parent_map"][unvisited.pop()]:
            if parent not in read:
                read.add(parent)
                unvisited.append(parent)
    assert "model.kpi_red_recovery.cabinet_kpi_red_recovery_queue" in read
    assert not skipped & read
    assert {"person_keys", "cabinet_kpi_red_recovery_queue"} <= {
        unique_id.split(".")[-1] for unique_id in first
    }
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


def test_the_second_build_selects_what_the_match_wrote_and_its_tests_run_there_only() -> None:
    from matcher.cycle import HISTORY_TESTS, MATCH_WRITES, REBUILT_AFTER_MATCH, build_selections

    tests_of_what_the_match_writes = [f"{written},resource_type:test" for written in MATCH_WRITES]
    first_exclude = [*tests_of_what_the_match_writes, REBUILT_AFTER_MATCH]
    assert build_selections([]) == ([], first_exclude, list(MATCH_WRITES), [])
    first, exclude, second, second_exclude = build_selections(["package:kpi_red_recovery"])
    assert first == ["package:kpi_red_recovery"]
    assert exclude == first_exclude
    assert second == [f"package:kpi_red_recovery,{written}" for written in MATCH_WRITES]
    assert second_exclude == []
    # a full refresh is the first build's alone: it rebuilds every model
    assert build_selections([], full_refresh=True).first_exclude == tests_of_what_the_match_writes
    # the hourly cycle leaves the tests of the whole history out of both builds
    hourly = build_selections([], history_tests=False)
    assert hourly.first_exclude == [*first_exclude, HISTORY_TESTS]
    assert hourly.second_exclude == [HISTORY_TESTS]


def test_a_build_step_names_its_three_slowest_nodes() -> None:
    from types import SimpleNamespace

    from matcher import dbt
    from matcher.cycle import CycleReport

    timings = [
        ("stg_cabinet__leads", "model", 0.2),
        ("assert_backlog_view_rows", "test", 1.9),
        ("person_keys", "model", 3.2),
        ("skipped_model", "model", None),  # a skipped node has no time
        ("int_backlog_intervals", "model", 1.7),
    ]
    results = [
        SimpleNamespace(node=SimpleNamespace(name=name, resource_type=kind), execution_time=took)
        for name, kind, took in timings
    ]
    slowest = dbt.slowest_nodes(results)
    assert [str(node) for node in slowest] == [
        "person_keys 3.2 s",
        "assert_backlog_view_rows 1.9 s",
        "int_backlog_intervals 1.7 s",
    ]
    report = CycleReport(steps=[("init", 0.0051), ("dbt build", 6.8291)], slowest={1: slowest})
    assert report.to_json()["steps"] == [
        {"step": "init", "seconds": 0.005},
        {
            "step": "dbt build",
            "seconds": 6.829,
            "slowest": [
                {"node": "person_keys", "kind": "model", "seconds": 3.2},
                {"node": "assert_backlog_view_rows", "kind": "test", "seconds": 1.9},
                {"node": "int_backlog_intervals", "kind": "model", "seconds": 1.7},
            ],
        },
    ]


def test_the_second_build_folds_what_the_match_wrote_and_the_next_build_the_rest(
    make_database: Callable[..., Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a claim lands between the cycle's builds on a red lead the match does not attempt:
    # the second build folds the attempted leads only (SECOND_BUILD_VARS), so the claimed
    # lead stays red in the intervals, every test passing; the next plain build closes it,
    # and the intervals equal a full refresh's
    from matcher import dbt, demo
    from matcher.cycle import SECOND_BUILD_VARS

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=11)
    calls: list[dict[str, object] | None] = []
    claimed: list[str] = []
    real_run = dbt.run

    def run_claiming_before_the_second(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("dbt_vars"))  # type: ignore[arg-type]
        if len(calls) == 2:
            # the newest red lead nobody attempted: the match takes the oldest first
            (lead,) = database.query(
                "select lead_source_pk from kpi_red_intermediate.int_backlog_intervals"
                " where is_open and lead_source_pk not in"
                " (select lead_source_pk from kpi_red.match_attempts)"
                " order by lead_created_at desc, lead_source_pk desc limit 1"
            )[0]
            database.execute(
                "insert into claims.lead_claims values ('C-between', %s, now())", (lead,)
            )
            claimed.append(lead)
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dbt, "run", run_claiming_before_the_second)
    result = CliRunner().invoke(
        main, ["cycle", "--limit", "20", "--json"], env=cycle_env(database, tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dbt_failures"] == []
    assert calls == [None, SECOND_BUILD_VARS]
    (lead,) = claimed

    def intervals() -> list[tuple[object, ...]]:
        return database.query(
            "select lead_source_pk, interval_number, entered_at, left_at, exit_kind,"
            " entry_kind, is_open, inputs_hash"
            " from kpi_red_intermediate.int_backlog_intervals order by 1, 2"
        )

    def is_open(lead_source_pk: str) -> bool:
        return bool(
            database.scalar(
                "select bool_or(is_open) from kpi_red_intermediate.int_backlog_intervals"
                " where lead_source_pk = %s",
                (lead_source_pk,),
            )
        )

    # what the match wrote is folded: no lead it linked is red in the intervals
    linked = [
        lead_source_pk
        for (lead_source_pk,) in database.query(
            "select lead_source_pk from kpi_red.match_attempts where outcome = 'matched'"
        )
    ]
    assert linked and not any(is_open(lead_source_pk) for lead_source_pk in linked)
    # the claim made meanwhile is the next build's
    assert is_open(lead)
    assert not database.scalar(
        "select count(*) from ops.v_cabinet_kpi_red_backlog where lead_source_pk = %s", (lead,)
    )
    monkeypatch.setattr(dbt, "run", real_run)
    assert database.dbt("build", "--exclude-resource-type", "unit_test").succeeded
    assert not is_open(lead)
    incremental = intervals()
    assert database.dbt("run", "--full-refresh", "--select", "int_backlog_intervals").succeeded
    assert intervals() == incremental


def test_an_unknown_backlog_changes_value_fails_the_build_by_name(demo_copy: Database) -> None:
    from matcher import dbt

    with pytest.raises(dbt.DbtError) as failed:
        demo_copy.dbt(
            "build", "--select", "int_backlog_intervals", dbt_vars={"backlog_changes": "some"}
        )
    assert "backlog_changes must be 'all' or 'match', not 'some'" in str(failed.value)


def test_the_hourly_cycle_leaves_the_whole_history_tests_to_the_days_cycle(
    make_database: Callable[..., Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--skip-history-tests` runs every data test but those tagged whole_history, in
    # both builds; a fault only such a test sees passes the hour and fails the day's cycle
    from matcher import dbt, demo
    from matcher.cycle import HISTORY_TESTS

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=5)
    builds: list[set[str]] = []
    real_run = dbt.run

    def run_and_keep_results(*args: object, **kwargs: object) -> object:
        try:
            return real_run(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            results = json.loads((tmp_path / "target" / "run_results.json").read_text())
            builds.append({str(result["unique_id"]) for result in results["results"]})

    monkeypatch.setattr(dbt, "run", run_and_keep_results)
    env = cycle_env(database, tmp_path)
    hourly = CliRunner().invoke(main, ["cycle", "--skip-history-tests", "--json"], env=env)
    assert hourly.exit_code == 0, hourly.output
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    data_tests = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and node["package_name"] == "kpi_red_recovery"
    }
    tag = HISTORY_TESTS.removeprefix("tag:")
    history = {unique_id for unique_id, node in data_tests.items() if tag in node["tags"]}
    names = {unique_id.split(".")[2] for unique_id in history}
    assert {
        "assert_backlog_view_rows",
        "assert_queue_one_row_per_red_lead",
        "unique_int_lead_attempts_lead_source_pk",
        "unique_int_lead_identifiers_lead_id",
        "unique_combination_v_identity_origin_missing_person_key",
        "unique_combination_person_keys_changed_person_key__key_type",
    } <= names
    ran = [unique_id for build in builds for unique_id in build if unique_id.startswith("test.")]
    assert sorted(ran) == sorted(set(data_tests) - history)  # each other test, once

    # a failed attempt with a reason nobody knows: only the log's accepted_values sees it
    (lead,) = database.query("select lead_id from cabinet.leads order by lead_id limit 1")[0]
    database.execute(
        "insert into kpi_red.match_attempts (run_id, lead_source_pk, outcome, fail_reason,"
        " identifiers_hash, started_at, attempted_at)"
        " values (gen_random_uuid(), %s, 'failed', 'cosmic_ray', 'x', now(), now())",
        (lead,),
    )
    builds.clear()
    hourly = CliRunner().invoke(main, ["cycle", "--skip-history-tests", "--json"], env=env)
    assert hourly.exit_code == 0, hourly.output
    daily = CliRunner().invoke(main, ["cycle", "--json"], env=env)
    assert daily.exit_code == 1
    (failure,) = json.loads(daily.stdout)["dbt_failures"]  # the error line is stderr's
    assert failure.startswith("source_accepted_values_kpi_red_match_attempts_fail_reason")
