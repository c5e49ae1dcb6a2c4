"""The benchmark harness at a toy size: it runs end to end and writes its JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
