"""`kpi-red unlink` on a real PostgreSQL: the link goes, the removal is logged, the person
is rejected, the matcher does not choose it again, and the history counts the lead's
return at the logged removal time, the same after a rebuild from scratch."""

from __future__ import annotations

import json
from typing import Any

import reliability_support as support
from click.testing import CliRunner
from conftest import Database

from matcher.cli import main
from matcher.run import MatchOptions, run_match


def cli(database: Database, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=database.cli_env())


def test_unlink_puts_the_lead_back_and_the_matcher_never_relinks_it(copy: Database) -> None:
    lead, person, linked_at, run_id = copy.query(
        "select source_pk, person_key, linked_at, run_id from canon.identity_links"
        " where linked_by = 'kpi-red' and match_rule like '%%+%%' order by source_pk limit 1"
    )[0]
    result = cli(copy, "unlink", lead, "--reason", "not her: checked the ID", "--reviewer", "ana")
    assert result.exit_code == 0, result.output
    assert f"unlinked {lead} from {person}" in result.output
    assert not copy.query("select 1 from canon.identity_links where source_pk = %s", (lead,))
    removal = copy.query(
        "select removed_by, reason, person_key, linked_at, linked_by, link_run_id, is_forced,"
        " removed_at from kpi_red.link_removals"
    )
    assert len(removal) == 1
    removed_by, reason, old_person, old_linked_at, linked_by, link_run, forced, removed_at = (
        removal[0]
    )
    assert (removed_by, reason, old_person, old_linked_at, linked_by, link_run, forced) == (
        "ana",
        "not her: checked the ID",
        person,
        linked_at,
        "kpi-red",
        run_id,
        False,
    )
    assert copy.query(
        "select person_key, decision, decided_via, decided_at from kpi_red.review_decisions"
    ) == [(person, "reject", "unlink", removed_at)]
    # red again at once (the live backlog view), and eligible: its match was undone
    assert lead in support.eligible_leads(copy)

    run_match(copy.conninfo, settings=copy.settings, options=MatchOptions(limit=None))
    assert (
        copy.scalar("select person_key from canon.identity_links where source_pk = %s", (lead,))
        != person
    )
    outcome, evidence = copy.query(
        "select outcome, evidence from kpi_red.match_attempts where lead_source_pk = %s"
        " order by attempt_id desc limit 1",
        (lead,),
    )[0]
    assert evidence["rejected"] == [person]

    # the history: out at the link, back at the logged removal
    result = copy.dbt("build")
    assert result.succeeded, result.failures
    intervals = copy.query(
        "select entered_at, left_at, exit_kind, entry_kind from"
        " kpi_red_intermediate.int_backlog_intervals where lead_source_pk = %s order by 1",
        (lead,),
    )
    assert intervals[0][1:3] == (linked_at, "matched")
    assert intervals[1][0] == removed_at and intervals[1][3] == "link_removed"
    status = copy.scalar(
        "select status from ops.cabinet_kpi_red_recovery_queue where lead_source_pk = %s", (lead,)
    )
    assert status in ({"failed", "pending"} if outcome == "failed" else {"matched"})
    explained = json.loads(cli(copy, "explain", lead, "--json").output)
    assert explained["link_removals"][0]["reason"] == "not her: checked the ID"
    assert any(c["rejected_by_review"] for c in explained["attempts"][-1]["candidates"])

    # a rebuild from scratch: the same intervals, queue and metrics
    before = {
        name: copy.query(f"select * from {name} order by 1, 2")  # noqa: S608
        for name in (
            "kpi_red_intermediate.int_backlog_intervals",
            "ops.v_cabinet_kpi_red_recovery_metrics_daily",
        )
    }
    queue = copy.query("select * from ops.cabinet_kpi_red_recovery_queue order by 1")
    result = copy.dbt("build", "--full-refresh")
    assert result.succeeded, result.failures
    for name, rows in before.items():
        after = copy.query(f"select * from {name} order by 1, 2")  # noqa: S608
        if name.endswith("intervals"):  # loaded_at: the build's own time
            after, rows = [row[:-1] for row in after], [row[:-1] for row in rows]
        assert after == rows, name
    rebuilt = copy.query("select * from ops.cabinet_kpi_red_recovery_queue order by 1")
    assert [row[:-1] for row in rebuilt] == [row[:-1] for row in queue]


def test_a_link_made_by_another_system_needs_force(copy: Database) -> None:
    lead, person, linked_by = copy.query(
        "select source_pk, person_key, linked_by from canon.identity_links"
        " where source_table = 'cabinet_leads' and linked_by not like 'kpi-red%%'"
        " order by source_pk limit 1"
    )[0]
    refused = cli(copy, "unlink", lead, "--reason", "wrong")
    assert refused.exit_code == 1
    assert support.one_line_error(refused.output)
    assert "--force" in refused.output and linked_by in refused.output
    assert copy.scalar("select count(*) from kpi_red.link_removals") == 0
    forced = cli(copy, "unlink", lead, "--reason", "wrong", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output)["person_key"] == person
    assert copy.query("select is_forced, linked_by from kpi_red.link_removals") == [
        (True, linked_by)
    ]


def test_what_cannot_be_unlinked_is_one_line(copy: Database) -> None:
    unlinked = copy.scalar("select lead_source_pk from ops.v_cabinet_kpi_red_backlog limit 1")
    for args in (
        ("unlink", unlinked, "--reason", "x"),
        ("unlink", "NO-SUCH-LEAD", "--reason", "x"),
        ("unlink", unlinked, "--reason", "  "),
    ):
        result = cli(copy, *args)
        assert result.exit_code == 1, args
        assert support.one_line_error(result.output), result.output
    assert cli(copy, "unlink", unlinked).exit_code == 2  # --reason is required
