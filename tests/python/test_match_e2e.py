"""The matcher end to end on the demo data: dbt build -> match -> dbt build, on a real
PostgreSQL, through the CLI (CliRunner) where it matters."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import Database

from matcher import records, write
from matcher.cli import main
from matcher.settings import Tables
from matcher.store import base as store_base
from matcher.store import stream as store_stream

CHECKSUM = """
    select count(*), coalesce(md5(string_agg(row_text, ',' order by row_text)), '')
    from (select source_rows::text as row_text from {table} as source_rows) as rows_as_text
"""


def checksum(database: Database, table: str) -> tuple[int, str]:
    return tuple(database.query(CHECKSUM.format(table=table))[0])  # type: ignore[return-value]


def state(database: Database) -> dict[str, tuple[int, str]]:
    return {
        table: checksum(database, table)
        for table in ("canon.identity_links", "canon.identity_origin", "kpi_red.match_attempts")
    }


def backlog(database: Database) -> int:
    return int(database.scalar("select count(*) from ops.v_cabinet_kpi_red_backlog"))


def kpi_red(database: Database, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=database.cli_env())
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def built(make_database: Callable[..., Database]) -> Database:
    """A fresh database with the demo data and a first dbt build (before any match)."""
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42)
    database.dbt("build")
    return database


@pytest.fixture(scope="module")
def first_run(built: Database) -> dict[str, object]:
    """Dry run first (must write nothing), then the real run, then dbt build."""
    before = state(built)
    backlog_before = backlog(built)
    code, output = kpi_red(built, "match", "--limit", "0", "--dry-run", "--json")
    assert code == 0, output
    dry = json.loads(output)
    dry_state = state(built)

    code, output = kpi_red(built, "match", "--limit", "0", "--batch-size", "250", "--json")
    assert code == 0, output
    summary = json.loads(output)
    backlog_live = backlog(built)
    built.dbt("build")
    return {
        "before": before,
        "dry": dry,
        "dry_state": dry_state,
        "summary": summary,
        "backlog_before": backlog_before,
        "backlog_live": backlog_live,
        "backlog_after_build": backlog(built),
    }


def test_dry_run_decides_but_writes_nothing(first_run: dict[str, object]) -> None:
    dry = first_run["dry"]
    assert first_run["dry_state"] == first_run["before"]
    assert dry["dry_run"] is True and dry["claimed"] > 0  # type: ignore[index]
    assert dry["links_written"] == dry["origins_written"] == 0  # type: ignore[index]
    # the real run decides the same
    summary = first_run["summary"]
    for key in ("claimed", "matched_by_rule", "failed_by_reason"):
        assert dry[key] == summary[key]  # type: ignore[index]


def test_backlog_falls_by_exactly_the_matched_leads(first_run: dict[str, object]) -> None:
    summary = first_run["summary"]
    matched = summary["matched"]  # type: ignore[index]
    assert matched > 0 and summary["failed"] > 0  # type: ignore[index]
    assert summary["links_written"] == matched  # type: ignore[index]
    assert first_run["backlog_before"] - first_run["backlog_live"] == matched  # type: ignore[operator]
    assert first_run["backlog_after_build"] == first_run["backlog_live"]


def test_every_rule_and_reason_shows_on_demo_data(first_run: dict[str, object]) -> None:
    summary = first_run["summary"]
    assert set(summary["matched_by_rule"]) >= {  # type: ignore[index]
        "document+name",
        "document+phone",
        "phone+email",
        "phone+name",
        "document_one_edit",
        "phone_one_edit",
    }
    assert set(summary["failed_by_reason"]) >= {  # type: ignore[index]
        "missing_identifiers",
        "no_match",
        "conflict",
        "name_mismatch",
    }


def test_no_wrong_link(built: Database, first_run: dict[str, object]) -> None:
    """Density one third (the default): a third of the DNI and phone blocks held, so
    typos land on strangers; no link is to anyone but the lead's own person."""
    assert built.wrong_links() == []
    assert recall_of_the_linkable(built) >= 0.9


def recall_of_the_linkable(database: Database) -> float:
    """Leads linked to their own person over the leads whose truth is a person, among
    the scenarios the matcher should link (ground truth: ``kpi_red_demo.lead_truth``)."""
    linked, total = database.query(
        """
        select
            count(*) filter (where links.person_key = truth.person_key),
            count(*)
        from kpi_red_demo.lead_truth as truth
        left join canon.identity_links as links
            on links.source_pk = truth.lead_id and links.linked_by = 'kpi-red'
        where truth.scenario in (
            'document', 'phone_email', 'phone_name', 'document_one_edit', 'phone_one_edit'
        )
        """
    )[0]
    return linked / total


def test_no_wrong_link_at_half_density(make_database: Callable[..., Database]) -> None:
    """Density one half: half of every block of numbers held, more strangers one edit
    away and under every typo; still no wrong link, and the evidence of every
    name_mismatch shows both names, the score and the threshold."""
    from matcher import demo

    database = make_database()
    demo.load(database.conninfo, database.settings, size="demo", seed=42, density=0.5)
    database.dbt("build")
    code, output = kpi_red(database, "match", "--limit", "0", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["failed_by_reason"]["name_mismatch"] > 0
    assert database.wrong_links() == []
    assert recall_of_the_linkable(database) >= 0.9
    mismatches = database.query(
        "select evidence from kpi_red.match_attempts where fail_reason = 'name_mismatch'"
    )
    for (evidence,) in mismatches:
        assert {"lead_name", "person_name", "name_score", "name_threshold"} <= set(evidence)
        assert evidence["name_score"] < evidence["name_mismatch_threshold"]
    overrides = database.scalar(
        "select count(*) from kpi_red.match_attempts where evidence ? 'exact_name_mismatch'"
    )
    assert overrides > 0  # typos that landed on a stranger, linked to the person one edit away


def test_one_attempt_per_claimed_lead_with_evidence(
    built: Database, first_run: dict[str, object]
) -> None:
    run_id = first_run["summary"]["run_id"]  # type: ignore[index]
    rows = built.query(
        """
        select count(*), count(distinct lead_source_pk),
            count(*) filter (where outcome = 'matched' and match_score is null),
            count(*) filter (where outcome = 'matched' and evidence ? 'name_score'),
            count(*) filter (where outcome = 'matched')
        from kpi_red.match_attempts
        where run_id = %s
        """,
        (run_id,),
    )
    attempts, leads, matched_without_score, with_name_score, matched = rows[0]
    assert attempts == leads == first_run["summary"]["claimed"]  # type: ignore[index]
    assert matched_without_score == 0
    assert with_name_score == matched


def test_origin_missing_is_zero_for_matched_persons(
    built: Database, first_run: dict[str, object]
) -> None:
    missing = built.scalar(
        """
        select count(*)
        from canon.identity_links as links
        left join canon.identity_origin as origin
            on origin.person_key = links.person_key
        where links.linked_by = 'kpi-red' and origin.person_key is null
        """
    )
    assert missing == 0


def test_a_second_match_changes_nothing(built: Database, first_run: dict[str, object]) -> None:
    before = state(built)
    code, output = kpi_red(built, "match", "--limit", "0", "--json")
    assert code == 0, output
    assert json.loads(output)["claimed"] == 0
    assert state(built) == before


def test_repair_origin_is_set_based_and_idempotent(
    built: Database, first_run: dict[str, object]
) -> None:
    missing = built.scalar("select count(*) from ops.v_identity_origin_missing")
    assert missing > 0  # the demo has persons linked by other systems without origin
    code, output = kpi_red(built, "repair-origin", "--dry-run", "--json")
    assert (code, json.loads(output)) == (0, {"origins_added": missing, "dry_run": True})
    code, output = kpi_red(built, "repair-origin")
    assert (code, output) == (0, f"added {missing} origin rows\n")
    assert built.scalar("select count(*) from ops.v_identity_origin_missing") == 0
    before = state(built)
    assert kpi_red(built, "repair-origin") == (0, "added 0 origin rows\n")
    assert state(built) == before


@pytest.mark.parametrize(
    ("linked_to", "recorded", "origin_rows"),
    [
        ("P-SOMEONE-ELSE", ("failed", "conflict"), 0),  # another person: a conflict
        ("P-DECIDED", ("matched", None), 1),  # the same person: the match stands
    ],
)
def test_a_lead_linked_elsewhere_meanwhile_is_left_alone_and_reported(
    built: Database,
    first_run: dict[str, object],
    linked_to: str,
    recorded: tuple[str, str | None],
    origin_rows: int,
) -> None:
    """The write path on its own: a decision for a lead that someone else linked between
    the stream and the write. Their link stays; the attempt says what happened."""
    lead_pk, created_at, hash_, last_attempt_id = built.query(
        """
        select
            attempts.lead_source_pk,
            leads.created_at,
            attempts.identifiers_hash,
            attempts.attempt_id
        from kpi_red.match_attempts as attempts
        inner join cabinet.leads as leads on leads.lead_id = attempts.lead_source_pk
        where attempts.outcome = 'failed' and attempts.fail_reason = 'no_match'
            and not exists (
                select 1 from canon.identity_links as links
                where links.source_pk = attempts.lead_source_pk
            )
        order by attempts.lead_source_pk
        limit 1
        """
    )[0]
    built.execute(
        "insert into canon.identity_links"
        " (source_table, source_pk, person_key, linked_at, linked_by)"
        " values ('cabinet_leads', %s, %s, now(), 'backoffice')",
        (lead_pk, linked_to),
    )
    decided = records.Decision(
        lead=records.Lead(
            lead_source_pk=lead_pk,
            created_at=created_at,
            identifiers_hash=hash_,
            full_name=None,
            last_attempt_id=last_attempt_id,
        ),
        outcome="matched",
        match_rule="document",
        match_score=100.0,
        person_key="P-DECIDED",
        evidence={"document": {"value": "DNI:1", "person_keys": ["P-DECIDED"]}},
    )
    run_id = f"test-linked-to-{linked_to}"
    with store_base.connect(built.conninfo) as conn, conn.transaction():
        written = write.write_decisions(
            conn,
            [decided],
            settings=built.settings,
            run_id=run_id,
            started_at=datetime.now(UTC),
        )
    assert (written.links_written, written.origins_written) == (0, origin_rows)
    assert [(final.outcome, final.fail_reason) for final in written.decisions] == [recorded]
    assert built.query(
        "select person_key, linked_by from canon.identity_links where source_pk = %s", (lead_pk,)
    ) == [(linked_to, "backoffice")]
    outcome, reason, evidence = built.query(
        "select outcome, fail_reason, evidence from kpi_red.match_attempts where run_id = %s",
        (run_id,),
    )[0]
    assert (outcome, reason) == recorded
    if recorded[0] == "failed":
        assert evidence["already_linked_elsewhere"] == linked_to
    assert (
        built.scalar("select count(*) from canon.identity_origin where person_key = 'P-DECIDED'")
        == origin_rows
    )


def test_missing_models_are_one_line_and_non_zero(make_database: Callable[..., Database]) -> None:
    empty = make_database()
    code, output = kpi_red(empty, "match")
    assert code == 1
    assert output.startswith("Error: ") and "dbt build" in output
    assert len(output.strip().splitlines()) == 1


def test_a_bad_connection_never_prints_the_password() -> None:
    env = {"KPI_RED_DSN": "host=127.0.0.1 port=1 user=matcher password=s3cr3t-pw dbname=nope"}
    result = CliRunner().invoke(main, ["match", "--json"], env=env)
    assert result.exit_code == 1
    assert "s3cr3t-pw" not in result.output
    assert result.output.startswith("Error: cannot connect to PostgreSQL")


def test_grants_quote_identifiers() -> None:
    result = CliRunner().invoke(main, ["grants", "--for", "all", "--matcher-role", 'odd"role'])
    assert result.exit_code == 0, result.output
    assert 'to "odd""role"' in result.output
    # the matcher inserts links and origin rows (never updates them), appends attempts
    assert (
        'grant select, insert on "canon"."identity_links", "canon"."identity_origin"'
        ' to "odd""role"' in result.output
    )
    assert 'grant select, insert on "kpi_red"."match_attempts" to "odd""role"' in result.output


def test_the_worklist_is_read_whole_and_in_order_past_any_small_integer(
    make_database: Callable[..., Database],
) -> None:
    """Pages are ranges of the worklist's ordinals: 40,000 leads (more than a smallint
    holds) come back once each, in order, whatever the page size."""
    database = make_database(init=False)
    database.execute(
        "create schema kpi_red_interface; create table kpi_red_interface.person_keys"
        " (person_key text, key_type text, key_value text, full_name text,"
        " identifiers_hash text);"
        # the reviewers' rejections, which each page reads beside the candidates
        " create schema kpi_red; create table kpi_red.review_decisions"
        " (lead_source_pk text, person_key text, decision text, identifiers_hash text)"
    )
    with store_base.connect(database.conninfo, autocommit=True) as conn:
        with conn.transaction():
            store_stream.create_worklist(conn)
        conn.execute(
            "insert into pg_temp.kpi_red_worklist (lead_source_pk, lead_created_at,"
            " identifiers_hash, max_attempt_id)"
            " select 'L' || lpad(n::text, 6, '0'), now(), 'h', 0"
            " from generate_series(1, 40000) as n"
        )
        for size in (2000, 999):
            read = [
                lead.lead_source_pk
                for page in store_stream.stream_worklist(conn, batch_size=size, tables=Tables())
                for lead in page
            ]
            assert read == [f"L{number:06d}" for number in range(1, 40001)]
