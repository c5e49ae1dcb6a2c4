"""The benchmark harness at a toy size: it runs end to end and writes its JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]

CONTRACT = (
    "size",
    "leads",
    "persons",
    "leads_per_s",
    "bound_leads_per_s",
    "naive_leads_per_s",
    "ratio_to_bound",
    "ratio_to_naive",
    "exact_leads_per_s",
    "exact_ratio_to_bound",
    "exact_ratio_to_naive",
    "peak_rss_mb",
    "dbt_full_s",
    "panel_ms",
)


@pytest.mark.timeout(120)
def test_bench_demo_size_writes_the_json_contract(socket_dir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "results"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--size",
            "demo",
            "--naive-sample",
            "200",
            "--trace-batches",
            "1",
            "--batch-sizes",
            "500",
            "--no-incremental",
            "--out-dir",
            str(out_dir),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    (path,) = out_dir.glob("*-demo.json")
    record = json.loads(path.read_text())
    for key in CONTRACT:
        assert record[key] is not None, key
    assert record["size"] == "demo"
    assert record["leads"] > 0 and record["persons"] > record["leads"]
    assert record["matcher_leads"] == record["eligible"]  # the drain took the whole backlog
    assert record["bound_leads"] > 0 and record["naive_leads"] == 200
    assert 0 < record["peak_rss_mb"] < 1000
    assert record["ratio_to_naive"] == pytest.approx(
        record["leads_per_s"] / record["naive_leads_per_s"], rel=0.01
    )
    assert record["exact_matcher_leads"] == record["eligible"]  # --no-near, on a copy
    assert record["exact_ratio_to_bound"] == pytest.approx(
        record["exact_leads_per_s"] / record["bound_leads_per_s"], rel=0.01
    )
    assert "explain_analyze" in record["matcher_trace"]["slowest"]
    # CPU: each process's own (wait4) and the server's (its sessions, once ended)
    if sys.platform == "linux":
        assert record["bound_server_cpu_s"] is not None
        for prefix in ("exact_matcher_", "matcher_", "dbt_full_"):
            assert record[f"{prefix}cpu_s"] > 0 and record[f"{prefix}server_cpu_s"] > 0, prefix
            assert record[f"{prefix}total_cpu_s"] == pytest.approx(
                record[f"{prefix}cpu_s"] + record[f"{prefix}server_cpu_s"], abs=0.02
            )
        if record["bound_total_cpu_s"]:
            bound_per_lead = record["bound_total_cpu_s"] / record["bound_leads"]
            drain_per_lead = record["matcher_total_cpu_s"] / record["matcher_leads"]
            assert record["matcher_cpu_ratio_to_bound"] == pytest.approx(
                bound_per_lead / drain_per_lead, rel=0.02
            )
        steps = {step["step"]: step for step in record["steps"]}
        assert steps["dbt build full"]["server_cpu_s"] == record["dbt_full_server_cpu_s"]
    # wrong links and recall against the ground truth, for both drains
    assert record["density"] == 0.33
    for key in ("recall", "recall_no_near"):
        assert record[key]["wrong"] == 0 and record[key]["links"] > 0, key
    assert record["recall"]["links"] == record["matcher_matched"]
    assert {row["match_rule"] for row in record["recall"]["rules"]} >= {"document+name"}
    assert "against the ground truth (density 0.33, default drain)" in completed.stdout
    steps = [step["step"] for step in record["steps"]]
    assert steps[0] == "generate data (SQL)" and "dbt build full" in steps
    # the table went to stdout, and the databases are gone
    assert "kpi-red match drain" in completed.stdout
    assert "error" not in record


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_server_cpu_counts_a_sessions_work_once_it_ends(socket_dir: Path) -> None:
    """The server's CPU of a session that burns a known amount: at least most of the time
    the statement took on the server (the rest of the machine can only add to it)."""
    from bench.database import BenchDatabase, server_cpu

    target = BenchDatabase(name="postgres", socket=socket_dir, home=PROJECT_DIR)
    with server_cpu(target) as measured, target.connect() as conn:
        plan = conn.execute(
            "explain (analyze, format json) select count(*) from generate_series(1, 4000000)"
        ).fetchone()[0]
    executed_s = plan[0]["Execution Time"] / 1000
    assert measured.seconds is not None
    assert measured.seconds >= 0.6 * executed_s > 0.05


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_server_cpu_ignores_sessions_open_before_and_gives_up_on_one_left_open(
    socket_dir: Path,
) -> None:
    from bench.database import BenchDatabase, server_cpu

    target = BenchDatabase(name="postgres", socket=socket_dir, home=PROJECT_DIR)
    with target.connect() as idle:  # open before the block, not the block's
        idle.execute("select 1")
        with server_cpu(target) as measured, target.connect() as conn:
            conn.execute("select count(*) from generate_series(1, 100000)")
        assert measured.seconds is not None
        # a session of the block still open after it: its CPU is not counted yet
        opened: list[psycopg.Connection] = []
        try:
            with server_cpu(target, wait_s=0.2) as unfinished:
                opened.append(target.connect())
                opened[0].execute("select 1")
            assert unfinished.seconds is None
        finally:
            for conn in opened:
                conn.close()


def test_growth_compares_the_sizes_interleaved_hours_when_every_size_has_them() -> None:
    from bench import report

    medium = {
        "hourly_cycle_s": 7.7,
        "hourly_cycle_interleaved_s": 8.0,
        "hourly_cycle_interleaved_runs_s": [8.3, 7.8, 8.0],
    }
    large = {
        "hourly_cycle_s": 11.6,
        "hourly_cycle_interleaved_s": 10.7,
        "hourly_cycle_interleaved_runs_s": [10.7, 10.2, 10.9],
    }
    text = report.growth([("medium", [], medium), ("large", [], large)])
    assert (
        "hourly kpi-red cycle, the sizes' hours interleaved (s, median): medium 8.0, large 10.7;"
        " growth 1.34x (target <= 1.5x medium -> large)"
    ) in text
    assert "its hours, in order (s): medium 8.3, 7.8, 8.0; large 10.7, 10.2, 10.9" in text
    assert "each size's own run, one hour (s): medium 7.7, large 11.6; growth 1.51x" in text
    # sizes run apart (--compare of older results, or one size stopped early): each
    # size's own hour carries the target
    del medium["hourly_cycle_interleaved_s"]
    text = report.growth([("medium", [], medium), ("large", [], large)])
    assert (
        "hourly kpi-red cycle (s): medium 7.7, large 11.6; growth 1.51x"
        " (target <= 1.5x medium -> large)"
    ) in text
    assert "interleaved" not in text


def test_the_hours_match_is_compared_with_the_drain_alone_and_inside_the_cycle() -> None:
    """The target reads the match before the hour's build (``match_new_s``); the cycle's
    match step, after its build, is printed beside it with no target."""
    from bench import report
    from bench.run import ratios

    record = {
        "leads_per_s": 7000.0,
        "match_new_leads": 5000,
        "match_new_s": 1.4,
        "hourly_cycle_match_leads": 5050,
        "hourly_cycle_match_s": 1.01,
    }
    ratios(record)
    assert record["hourly_ratio_to_drain"] == pytest.approx(5000 / 1.4 / 7000, abs=0.001)
    assert record["hourly_cycle_match_leads_per_s"] == 5000.0
    assert record["hourly_cycle_match_ratio_to_drain"] == pytest.approx(0.714, abs=0.001)
    text = report.verdict(record)
    assert "ok  hourly match >= 0.5x the drain's leads/s: 0.51" in text
    assert "--   the hourly cycle's match, after its build (no target): 0.714" in text
    assert "ceiling" not in text  # no run with nothing due measured


def test_the_hourly_targets_floors_are_printed_beside_them() -> None:
    """A match with nothing due caps the hourly match's ratio (its fixed part, then the
    hour's leads at the drain's pace); a build with nothing new is the incremental
    build's floor."""
    from bench import report
    from bench.run import ratios

    record = {
        "leads_per_s": 7000.0,
        "match_new_leads": 5000,
        "match_new_s": 1.4,
        "match_empty_s": 0.5,
        "dbt_noop_s": 7.5,
        "dbt_noop_ratio": 0.115,
    }
    ratios(record)
    # 5,000 leads at 7,000 a second take 0.714 s; with 0.5 s before them, 5,000 / 1.214 s
    assert record["hourly_ratio_ceiling"] == pytest.approx(5000 / 1.214 / 7000, abs=0.001)
    text = report.verdict(record)
    assert (
        "--   the hourly match's ceiling: 0.588 (a run with nothing due takes 0.5 s, then"
        " the hour's leads at the drain's pace)"
    ) in text
    assert (
        "--   the hourly build's floor: 0.115 of full (the same build with nothing new, 7.5 s)"
    ) in text
