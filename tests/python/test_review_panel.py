"""The panel says what to do: the backlog by cause with what fixes it, the review queue,
the oldest red lead, ORIGIN_MISSING (which `kpi-red cycle` repairs), in the JSON, the
terminal and the web page's API; a review's links count as `reviewed_out`."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Database
from fastapi.testclient import TestClient
from test_cycle import cycle_env

from matcher import demo, review
from matcher.cli import main
from matcher.web import REVIEW_QUEUE_PATH, create_app


@pytest.fixture(scope="module")
def cycled(
    make_database: Callable[..., Database], tmp_path_factory: pytest.TempPathFactory
) -> Database:
    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42)
    origin_missing = database.scalar(
        "select count(distinct links.person_key) from canon.identity_links as links"
        " where not exists (select 1 from canon.identity_origin as origin"
        " where origin.person_key = links.person_key)"
    )
    assert origin_missing > 10  # persons linked by other systems, no origin row
    env = cycle_env(database, tmp_path_factory.mktemp("cycle"))
    result = CliRunner().invoke(main, ["cycle", "--json"], env=env)
    assert result.exit_code == 0, result.output
    # the matcher writes origin rows for the persons it links; the rest, the cycle
    assert 0 < json.loads(result.output)["origins_repaired"] <= origin_missing
    return database


def test_the_json_says_what_to_do(cycled: Database) -> None:
    result = CliRunner().invoke(main, ["metrics", "--json", "--live"], env=cycled.cli_env())
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    todo = payload["what_to_do"]
    buckets = Counter(
        dict(
            cycled.query(
                "select reason_bucket, count(*) from ops.v_cabinet_kpi_red_backlog group by 1"
            )
        )
    )
    by_cause = {cause["reason_bucket"]: cause for cause in todo["backlog_by_cause"]}
    assert {name: cause["leads"] for name, cause in by_cause.items()} == buckets
    assert sum(buckets.values()) == payload["current_backlog"]
    assert abs(sum(cause["share_pct"] for cause in by_cause.values()) - 100) < 1
    assert by_cause["missing_identifiers"]["fixed_by"] == "upstream data"
    assert by_cause["no_match"]["fixed_by"] == "wait for the registry"
    reviewable = [name for name in by_cause if name in review.REVIEW_REASONS]
    assert reviewable
    for name in reviewable:
        assert by_cause[name]["fixed_by"] == "review"
        assert by_cause[name]["review_command"] == f"kpi-red review list --reason {name}"
    assert todo["review_queue"]["leads"] == sum(buckets[name] for name in reviewable)
    assert todo["oldest_red_age_days"] == cycled.scalar(
        "select max(age_days) from ops.v_cabinet_kpi_red_backlog"
    )
    # the cycle repaired every ORIGIN_MISSING person, whoever linked them
    assert todo["origin_missing_persons"] == 0
    text = CliRunner().invoke(main, ["metrics"], env=cycled.cli_env()).output
    assert "What to do" in text and "kpi-red review list --reason" in text


def test_the_web_page_links_each_reviewable_cause_to_its_leads(cycled: Database) -> None:
    client = TestClient(create_app(conninfo=cycled.conninfo))
    reason = next(
        row[0]
        for row in cycled.query(
            "select reason_bucket from ops.v_cabinet_kpi_red_backlog_causes where is_reviewable"
        )
    )
    response = client.get(REVIEW_QUEUE_PATH, params={"reason": reason, "limit": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["command"] == f"kpi-red review list --reason {reason}"
    ages = [lead["age_days"] for lead in body["leads"]]
    assert 0 < len(ages) <= 5 and ages == sorted(ages, reverse=True)
    assert client.get(REVIEW_QUEUE_PATH, params={"reason": "no_match"}).status_code == 422
    page = client.get("/").text
    assert 'id="what-to-do"' in page and 'id="reviewed-out"' in page
    script = client.get("/static/panel.js").text
    assert "review-queue" in script and "review_command" in script


def test_a_review_counts_as_reviewed_out(
    cycled: Database, tmp_path: Path, make_database: Callable[..., Database]
) -> None:
    import reliability_support as support

    with support.cloned(cycled, tmp_path / "db") as database:
        assert (
            CliRunner()
            .invoke(main, ["review", "export", str(tmp_path / "q.csv")], env=database.cli_env())
            .exit_code
            == 0
        )
        truth = dict(database.query("select lead_id, person_key from kpi_red_demo.lead_truth"))
        with (tmp_path / "q.csv").open(encoding="utf-8", newline="") as source:
            rows = list(csv.DictReader(source))
        chosen = [row for row in rows if truth.get(row["lead_source_pk"]) == row["person_key"]][:5]
        with (tmp_path / "five.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**row, "decision": "link"} for row in chosen)
        imported = CliRunner().invoke(
            main, ["review", "import", str(tmp_path / "five.csv")], env=database.cli_env()
        )
        assert imported.exit_code == 0, imported.output
        result = database.dbt("run")
        assert result.succeeded, result.failures
        payload = json.loads(
            CliRunner().invoke(main, ["metrics", "--json"], env=database.cli_env()).output
        )
        assert payload["today"]["reviewed_out"] == len(chosen) == 5
        text = CliRunner().invoke(main, ["metrics"], env=database.cli_env()).output
        assert "Reviewed today" in text
