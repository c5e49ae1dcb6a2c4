"""`kpi-red explain`: one lead's story on a real PostgreSQL, checked against what the
tables hold (identifiers and why one is unusable, state, attempts with candidates,
link and origin, reviews), and an unknown lead is one line."""

from __future__ import annotations

import json
from typing import Any

import reliability_support as support
from click.testing import CliRunner
from conftest import Database

from matcher.cli import main


def explain(database: Database, lead: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["explain", lead, "--json"], env=database.cli_env())
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_a_matched_lead_shows_its_attempt_link_and_origin(cycled: Database) -> None:
    lead, person, rule, run_id = cycled.query(
        "select source_pk, person_key, match_rule, run_id from canon.identity_links"
        " where linked_by = 'kpi-red' order by source_pk limit 1"
    )[0]
    story = explain(cycled, lead)
    assert story["lead_source_pk"] == lead
    assert story["state"]["is_red"] is False and story["state"]["queue_status"] == "matched"
    (attempt,) = story["attempts"]
    assert (attempt["outcome"], attempt["match_rule"], attempt["run_id"]) == (
        "matched",
        rule,
        run_id,
    )
    assert attempt["person_key"] == person
    assert person in [candidate["person_key"] for candidate in attempt["candidates"]]
    assert story["link"]["person_key"] == person and story["link"]["linked_by"] == "kpi-red"
    origin = cycled.query(
        "select origin_tag, origin_source_pk from canon.identity_origin where person_key = %s",
        (person,),
    )[0]
    assert (story["link"]["origin_tag"], story["link"]["origin_source_pk"]) == origin
    text = CliRunner().invoke(main, ["explain", lead], env=cycled.cli_env()).output
    assert f"-> {person} by kpi-red ({rule})" in text


def test_a_conflict_shows_each_candidate_side_by_side(cycled: Database) -> None:
    lead = cycled.scalar(
        "select lead_source_pk from ops.v_cabinet_kpi_red_backlog"
        " where reason_bucket = 'conflict' order by 1 limit 1"
    )
    story = explain(cycled, lead)
    assert story["state"]["reason_bucket"] == "conflict"
    assert story["state"]["what_fixes_it"] == "review"
    assert story["state"]["queue_status"] == "failed"
    candidates = story["attempts"][-1]["candidates"]
    evidence = story["attempts"][-1]["evidence"]
    assert {c["person_key"] for c in candidates} == set(evidence["conflicting_person_keys"])
    keys = {row["key_type"]: row["normalized"] for row in story["identifiers"]}
    for candidate in candidates:
        assert candidate["agreeing_keys"]
        for key_type in candidate["agreeing_keys"]:
            assert candidate["keys"][key_type] == keys[key_type]
        assert 0 <= candidate["name_score"] <= 100 and candidate["name_threshold"] == 85


def test_why_an_identifier_is_not_usable(copy: Database) -> None:
    lead = copy.scalar(
        "select lead_source_pk from ops.v_cabinet_kpi_red_backlog order by 1 limit 1"
    )
    copy.execute(
        "update cabinet.leads set phone = '123456789', document_type = 'DNI',"
        " document_number = '12345678', email = 'not an email', updated_at = now()"
        " where lead_id = %s",
        (lead,),
    )
    shared = copy.scalar(
        "select min(email) from canon.identity_registry"
        " where email ~ '^[a-z0-9._]+@[a-z0-9.]+[.][a-z]+$'"
        " group by email having count(*) = 1 order by 1 limit 1"
    )
    for number in range(4):  # more than junk_shared_threshold (3) persons hold it
        copy.execute(
            "insert into canon.identity_registry (person_key, full_name, email, created_at)"
            " values (%s, 'Shared Mailbox', %s, now())",
            (f"P-SHARED-{number}", shared),
        )
    assert copy.dbt("run").succeeded
    story = explain(copy, lead)
    status = {row["key_type"]: row["status"] for row in story["identifiers"]}
    assert status == {"document": "blocklisted", "phone": "blocklisted", "email": "malformed"}
    assert story["state"]["reason_bucket"] == "missing_identifiers"
    assert story["state"]["what_fixes_it"] == "upstream data"

    copy.execute("update cabinet.leads set email = %s where lead_id = %s", (shared, lead))
    story = explain(copy, lead)
    email = next(row for row in story["identifiers"] if row["key_type"] == "email")
    holders = copy.scalar(
        "select count(*) from canon.identity_registry where email = %s", (shared,)
    )
    assert email["status"] == f"shared by {holders} registry persons" and holders > 3

    copy.execute("update cabinet.leads set email = null where lead_id = %s", (lead,))
    story = explain(copy, lead)
    assert next(r for r in story["identifiers"] if r["key_type"] == "email")["status"] == "absent"


def test_a_lead_whose_link_was_removed_is_taken_after_the_next_build(copy: Database) -> None:
    lead = copy.scalar(
        "select source_pk from canon.identity_links where linked_by = 'kpi-red' order by 1 limit 1"
    )
    copy.execute("delete from canon.identity_links where source_pk = %s", (lead,))
    state = explain(copy, lead)["state"]
    # red again at once in the live view, but no timestamp moved: backlog_due takes it
    # from the next build on, and explain says so
    assert (state["reason_bucket"], state["is_eligible"], state["is_due"]) == (
        "pending_match",
        True,
        False,
    )
    text = CliRunner().invoke(main, ["explain", lead], env=copy.cli_env()).output
    assert "the matcher takes it after the next dbt build" in text
    assert copy.dbt("run").succeeded
    assert explain(copy, lead)["state"]["is_due"] is True
    text = CliRunner().invoke(main, ["explain", lead], env=copy.cli_env()).output
    assert "(eligible now)" in text


def test_an_unknown_lead_is_one_line(cycled: Database) -> None:
    result = CliRunner().invoke(main, ["explain", "NO-SUCH-LEAD"], env=cycled.cli_env())
    assert result.exit_code == 1
    assert support.one_line_error(result.output)
    assert "NO-SUCH-LEAD" in result.output
