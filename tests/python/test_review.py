"""`kpi-red review` on a real PostgreSQL: a spreadsheet round trip that settles every
reviewable demo lead against the ground truth, bad rows, the terminal loop, and the
matcher honouring rejections (also when a reject arrives between its read and its write)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import reliability_support as support
from click.testing import CliRunner
from conftest import Database

from matcher import review
from matcher import write as writes
from matcher.cli import main
from matcher.run import MatchOptions, run_match
from matcher.store import review as review_store

REVIEW_STATUSES = {"linked", "rejected"}


@pytest.fixture(scope="module")
def built(make_database: Callable[..., Database]) -> Database:
    """The demo data, built, never matched (clone it)."""
    return support.golden(make_database)


def cli(database: Database, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=database.cli_env(), input=input)


def truth(database: Database) -> dict[str, str | None]:
    return dict(database.query("select lead_id, person_key from kpi_red_demo.lead_truth"))


def filled(
    path: Path, decide: Callable[[dict[str, str]], str], note: str = ""
) -> list[dict[str, str]]:
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for row in rows:
        row["decision"] = decide(row)
        row["note"] = note
    return rows


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_csv_round_trip_settles_every_reviewable_lead(copy: Database, tmp_path: Path) -> None:
    listed = cli(copy, "review", "list", "--json")
    assert listed.exit_code == 0, listed.output
    queue = json.loads(listed.output)
    assert len(queue) > 100
    assert {lead["reason"] for lead in queue} <= set(review.REVIEW_REASONS)
    exported = cli(copy, "review", "export", str(tmp_path / "queue.csv"))
    assert exported.exit_code == 0, exported.output
    real = truth(copy)
    rows = filled(
        tmp_path / "queue.csv",
        lambda row: "link" if real.get(row["lead_source_pk"]) == row["person_key"] else "reject",
        note="checked",
    )
    assert len({row["lead_source_pk"] for row in rows}) == len(queue)
    write(tmp_path / "filled.csv", rows)
    links_before = copy.scalar("select count(*) from canon.identity_links")

    imported = cli(copy, "review", "import", str(tmp_path / "filled.csv"), "--reviewer", "ana")
    assert imported.exit_code == 0, imported.output
    wanted_links = sum(row["decision"] == "link" for row in rows)
    assert f"linked {wanted_links}, rejected {len(rows) - wanted_links}" in imported.output
    assert wanted_links > 50
    review_links = copy.query(
        "select source_pk, person_key, match_rule, run_id from canon.identity_links"
        " where linked_by = 'kpi-red review'"
    )
    assert len(review_links) == wanted_links
    assert all(real[lead] == person for lead, person, _rule, _run in review_links)
    assert {rule for _lead, _person, rule, _run in review_links} == {"review"}
    # the origin row of each linked person, as the matcher writes it
    assert not copy.query(
        "select links.person_key from canon.identity_links as links"
        " left join canon.identity_origin as origin on origin.person_key = links.person_key"
        " where links.linked_by = 'kpi-red review' and origin.person_key is null"
    )
    decisions = copy.scalar("select count(*) from kpi_red.review_decisions")
    assert decisions == len(rows)
    assert copy.scalar("select count(*) from canon.identity_links") == links_before + wanted_links

    again = cli(copy, "review", "import", str(tmp_path / "filled.csv"), "--reviewer", "ana")
    assert again.exit_code == 0, again.output
    assert f"linked 0, rejected 0, already recorded {len(rows)}" in again.output
    assert copy.scalar("select count(*) from kpi_red.review_decisions") == decisions
    assert cli(copy, "review", "list").output.strip() == "nothing to review"

    # the next build folds them: queue, metrics, conservation (dbt's data tests)
    result = copy.dbt("build")
    assert result.succeeded, result.failures
    statuses = dict(
        copy.query("select status, count(*) from ops.cabinet_kpi_red_recovery_queue group by 1")
    )
    assert statuses["reviewed"] == wanted_links
    assert (
        copy.scalar("select sum(reviewed_out) from ops.v_cabinet_kpi_red_recovery_metrics_daily")
        == wanted_links
    )
    assert not copy.query(
        "select metric_date from ops.v_cabinet_kpi_red_recovery_metrics_daily"
        " where backlog_end <> backlog_start + new_backlog_in - matched_out - reviewed_out"
        " - other_out"
    )
    # each decision shows in explain
    lead, person, _rule, _run = review_links[0]
    explained = json.loads(cli(copy, "explain", lead, "--json").output)
    assert explained["link"]["linked_by"] == "kpi-red review"
    assert explained["state"]["queue_status"] == "reviewed"
    assert ("link", person) in [
        (d["decision"], d["person_key"]) for d in explained["review_decisions"]
    ]

    # a rebuild from scratch gives the same rows
    queue_rows = copy.query("select * from ops.cabinet_kpi_red_recovery_queue order by 1")
    metrics = copy.query("select * from ops.v_cabinet_kpi_red_recovery_metrics_daily order by 1")
    result = copy.dbt("run", "--full-refresh")
    assert result.succeeded, result.failures
    drop_loaded = lambda rows: [row[:-1] for row in rows]  # noqa: E731 (loaded_at: the build's time)
    assert drop_loaded(
        copy.query("select * from ops.cabinet_kpi_red_recovery_queue order by 1")
    ) == drop_loaded(queue_rows)
    assert (
        copy.query("select * from ops.v_cabinet_kpi_red_recovery_metrics_daily order by 1")
        == metrics
    )


def test_each_bad_row_gets_its_own_line(copy: Database, tmp_path: Path) -> None:
    assert cli(copy, "review", "export", str(tmp_path / "queue.csv")).exit_code == 0
    rows = list(csv.DictReader((tmp_path / "queue.csv").open(encoding="utf-8")))
    by_lead: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_lead.setdefault(row["lead_source_pk"], []).append(row)
    pairs = [found for found in by_lead.values() if len(found) == 2]
    singles = [found[0] for found in by_lead.values() if len(found) == 1]
    linked_lead = copy.scalar(
        "select source_pk from canon.identity_links where linked_by = 'kpi-red' order by 1 limit 1"
    )
    good = {**singles[0], "decision": "reject"}
    stale = {**singles[1], "decision": "reject"}
    two_links = [{**row, "decision": "link"} for row in pairs[0]]
    bad = [
        good,  # line 2
        {**singles[2], "decision": "yes please"},  # 3
        {**singles[3], "lead_source_pk": "NO-SUCH-LEAD", "decision": "reject"},  # 4
        {**singles[4], "person_key": "NO-SUCH-PERSON", "decision": "reject"},  # 5
        {**singles[5], "lead_source_pk": linked_lead, "decision": "link"},  # 6
        stale,  # 7
        *two_links,  # 8, 9
        {**singles[6], "identifiers_hash": "", "decision": "reject"},  # 10
    ]
    copy.execute(
        "update cabinet.leads set email = 'moved@example.org', updated_at = now()"
        " where lead_id = %s",
        (stale["lead_source_pk"],),
    )
    result = cli(copy, "review", "import", str(write(tmp_path / "bad.csv", bad)))
    assert result.exit_code == 1
    lines = {
        line.split(":")[0]: line for line in result.output.splitlines() if line.startswith("line ")
    }
    assert "not link, reject or blank" in lines["line 3"]
    assert "no such lead" in lines["line 4"]
    assert "no such registry person" in lines["line 5"]
    assert "already linked" in lines["line 6"]
    assert "changed since the export" in lines["line 7"]
    assert "two links for one lead" in lines["line 8"] and "two links" in lines["line 9"]
    assert "identifiers_hash empty" in lines["line 10"]
    assert "rejected 1," in result.output and "refused 8" in result.output
    assert copy.query(
        "select lead_source_pk, person_key, decision from kpi_red.review_decisions"
    ) == [(good["lead_source_pk"], good["person_key"], "reject")]
    assert "Traceback" not in result.output


def test_a_file_that_is_no_export_is_one_line(copy: Database, tmp_path: Path) -> None:
    for content in (b"a,b\n1,2\n", bytes(range(256)) * 4, b""):
        path = tmp_path / "junk.csv"
        path.write_bytes(content)
        result = cli(copy, "review", "import", str(path))
        assert result.exit_code == 1
        assert support.one_line_error(result.output), result.output


def test_the_terminal_loop_saves_every_answer(copy: Database) -> None:
    first = review_queue(copy)[:3]
    # lead 1: not candidate 1, then link candidate 2 (numbers stay); lead 2: skip; lead 3:
    # back to lead 2, skip it again; lead 3: none of them (the queue ends)
    answers = "r 1\nl 2\ns\nb\ns\nr a\n"
    result = cli(copy, "review", "--limit", "3", "--reviewer", "bo", input=answers)
    assert result.exit_code == 0, result.output
    decided = copy.query(
        "select lead_source_pk, person_key, decision, reviewer, decided_via"
        " from kpi_red.review_decisions order by decision_id"
    )
    lead1, lead3 = first[0], first[2]
    open1 = lead1.open_candidates
    assert decided[0] == (lead1.lead_source_pk, open1[0].person_key, "reject", "bo", "terminal")
    if len(open1) > 1:
        assert decided[1][:3] == (lead1.lead_source_pk, open1[1].person_key, "link")
        assert (
            copy.scalar(
                "select person_key from canon.identity_links where source_pk = %s",
                (lead1.lead_source_pk,),
            )
            == open1[1].person_key
        )
    assert not [row for row in decided if row[0] == first[1].lead_source_pk]
    rejected3 = {row[1] for row in decided if row[0] == lead3.lead_source_pk}
    assert rejected3 == {option.person_key for option in lead3.open_candidates}
    assert "saved" in result.output


def review_queue(database: Database) -> list[review.QueueLead]:
    with psycopg.connect(database.conninfo) as conn:
        tables = database.settings.tables
        rows = review_store.review_queue(conn, tables=tables, reasons=review.REVIEW_REASONS)
        wanted = [
            p for row in rows for p in review.candidate_keys(row["evidence"], row["person_key"])
        ]
        persons = review_store.persons(conn, tables=tables, person_keys=wanted)
        rejected = review_store.rejections(
            conn, tables=tables, leads=[row["lead_source_pk"] for row in rows]
        )
    return review.queue_leads(rows, persons, rejected)


def reject(database: Database, pairs: list[tuple[str, str]]) -> list[review.Outcome]:
    hashes = dict(
        database.query(
            "select lead_source_pk, identifiers_hash from ops.v_cabinet_kpi_red_backlog"
            " where lead_source_pk = any(%s)",
            ([lead for lead, _ in pairs],),
        )
    )
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        return review_store.apply_decisions(
            conn,
            [review.Decision(lead, person, "reject", hashes[lead]) for lead, person in pairs],
            tables=database.settings.tables,
            reviewer="test",
            decided_via="csv",
            run_id="review-test",
        )


def test_the_matcher_never_links_a_rejected_pair_until_the_lead_changes(
    built: Database, tmp_path: Path, make_database: Callable[..., Database]
) -> None:
    reference = support.reference_state(make_database)
    chosen = sorted(reference.links)[::50][:10]
    with support.cloned(built, tmp_path / "db") as database:
        outcomes = reject(database, chosen)
        assert {outcome.status for outcome in outcomes} == {"rejected"}
        run_match(database.conninfo, settings=database.settings, options=MatchOptions(limit=None))
        links = dict(database.query("select source_pk, person_key from canon.identity_links"))
        for lead, person in chosen:
            assert links.get(lead) != person
            evidence = database.scalar(
                "select evidence from kpi_red.match_attempts where lead_source_pk = %s"
                " order by attempt_id desc limit 1",
                (lead,),
            )
            assert evidence["rejected"] == [person]
        # the lead's identifiers change: the rejection was for the lead as it was
        lead, person = chosen[0]
        database.execute(
            "update cabinet.leads set email = null, updated_at = now() where lead_id = %s", (lead,)
        )
        assert lead in support.eligible_leads(database)
        run_match(database.conninfo, settings=database.settings, options=MatchOptions(limit=None))
        relinked = database.scalar(
            "select person_key from canon.identity_links where source_pk = %s", (lead,)
        )
        if relinked is not None:
            assert relinked == person
        evidence = database.scalar(
            "select evidence from kpi_red.match_attempts where lead_source_pk = %s"
            " order by attempt_id desc limit 1",
            (lead,),
        )
        assert "rejected" not in evidence


def test_a_reject_between_the_matchers_read_and_its_write_wins(
    built: Database,
    tmp_path: Path,
    make_database: Callable[..., Database],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = support.reference_state(make_database)
    with support.cloned(built, tmp_path / "db") as database:
        pairs = sorted(reference.links)
        original = writes.write_decisions
        done: list[str] = []

        def reject_first(conn: psycopg.Connection, decisions: Any, **kwargs: Any) -> Any:
            if not done:
                matched = [d for d in decisions if d.is_matched][:5]
                reject(database, [(d.lead.lead_source_pk, d.person_key) for d in matched])
                done.extend(d.lead.lead_source_pk for d in matched)
            return original(conn, decisions, **kwargs)

        monkeypatch.setattr(writes, "write_decisions", reject_first)
        summary = run_match(
            database.conninfo,
            settings=database.settings,
            options=MatchOptions(limit=None, writers=1),
        )
        assert len(done) == 5
        assert summary.skipped_by_reason["rejected_meanwhile"] == 5, summary
        assert not database.query(
            "select 1 from canon.identity_links where source_pk = any(%s)", (done,)
        )
        assert pairs  # the reference linked them
