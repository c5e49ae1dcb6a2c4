"""The write decides on what is true at commit: probes of each change upstream makes
between the matcher's decision and its write.

Each probe picks leads an uninterrupted run links (by their document), and changes them
while the matcher is between decide and write: the test wraps ``write.write_decisions``
(no hook in the write path) and applies the change to the batch's picked leads just
before the batch is staged, locked and written. The reference is a run on a copy where
the same change was made before the run started, so the matcher saw the final data from
the start. Then: no link the live data does not support (every link the probe run wrote
is one the reference wrote too), none for the changed leads from what was read, the
summary counts them, and a follow-up run reaches the reference's links.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import reliability_support as support
from conftest import Database

from matcher import write
from matcher.run import MatchOptions, run_match

pytestmark = pytest.mark.reliability

PICKED = 24


@dataclass(frozen=True)
class Target:
    lead: str
    person: str
    other_person: str
    """A person of another picked lead: the value the change moves the lead to."""


@pytest.fixture(scope="module")
def world(make_database: Callable[..., Database]) -> tuple[Database, list[Target]]:
    """The golden demo database (never written to) and the picked leads: leads the
    uninterrupted run linked by their document, each with another such lead's person."""
    golden = support.golden(make_database)
    reference = support.reference_state(make_database)
    documented = {
        row[0]
        for row in golden.query(
            "select lead_id from cabinet.leads where document_number is not null"
        )
    }
    linked = sorted((lead, person) for lead, person in reference.links if lead in documented)
    chosen = linked[:: max(1, len(linked) // PICKED)][:PICKED]
    targets = [
        Target(lead, person, chosen[(number + 1) % len(chosen)][1])
        for number, (lead, person) in enumerate(chosen)
    ]
    return golden, targets


CHANGES: dict[str, str] = {
    "claimed": "insert into claims.lead_claims values ('C-' || %(lead)s, %(lead)s, now())",
    "deleted": "delete from cabinet.leads where lead_id = %(lead)s",
    "document_changed": """
        update cabinet.leads as leads
        set document_type = persons.document_type, document_number = persons.document_number,
            updated_at = now()
        from canon.identity_registry as persons
        where leads.lead_id = %(lead)s and persons.person_key = %(other_person)s
    """,
    "phone_changed": """
        update cabinet.leads as leads
        set phone = persons.phone, document_number = null, updated_at = now()
        from canon.identity_registry as persons
        where leads.lead_id = %(lead)s and persons.person_key = %(other_person)s
    """,
    "person_changed": """
        update canon.identity_registry
        set document_number = '7' || document_number, updated_at = now()
        where person_key = %(person)s
    """,
    "linked_elsewhere": """
        insert into canon.identity_links
            (source_table, source_pk, person_key, match_rule, match_score, linked_at,
             linked_by, run_id)
        values ('cabinet_leads', %(lead)s, %(other_person)s, 'manual', 100, now(),
                'backoffice', 'backoffice')
    """,
}
"""What changes for a picked lead. ``phone_changed`` also drops the document, so the new
phone decides."""

SKIP_REASON = {
    "claimed": "claimed_meanwhile",
    "deleted": "lead_deleted",
    "document_changed": "changed_since_read",
    "phone_changed": "changed_since_read",
}


def change(database: Database, kind: str, targets: list[Target]) -> None:
    with database.connect() as conn:
        for target in targets:
            conn.execute(
                CHANGES[kind],  # type: ignore[arg-type]
                {
                    "lead": target.lead,
                    "person": target.person,
                    "other_person": target.other_person,
                },
            )


@contextmanager
def changed_before_each_write(
    database: Database, kind: str, targets: list[Target]
) -> Iterator[list[str]]:
    """Wrap ``write.write_decisions``: the picked leads of a batch change just before it is
    written. Yields the leads changed that way (decided on what was read before)."""
    original = write.write_decisions
    by_lead = {target.lead: target for target in targets}
    changed: list[str] = []

    def write_decisions(conn: psycopg.Connection, decisions: Any, **options: Any) -> Any:
        due = [
            by_lead[decision.lead.lead_source_pk]
            for decision in decisions
            if decision.lead.lead_source_pk in by_lead
        ]
        if due:
            change(database, kind, due)
            changed.extend(target.lead for target in due)
        return original(conn, decisions, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(write, "write_decisions", write_decisions)
        yield changed


def kpi_links(database: Database) -> dict[str, str]:
    rows = database.query(
        "select source_pk, person_key from canon.identity_links where linked_by = 'kpi-red'"
    )
    return dict(rows)  # type: ignore[arg-type]


def last_outcomes(database: Database, leads: list[str]) -> dict[str, tuple[str, str | None]]:
    rows = database.query(
        """
        select distinct on (lead_source_pk) lead_source_pk, outcome, fail_reason
        from kpi_red.match_attempts where lead_source_pk = any(%s)
        order by lead_source_pk, attempt_id desc
        """,
        (leads,),
    )
    return {row[0]: (row[1], row[2]) for row in rows}


def drain(database: Database) -> Any:
    return run_match(
        database.conninfo,
        settings=database.settings,
        options=MatchOptions(limit=None, batch_size=support.BATCH_SIZE),
    )


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_change_between_decide_and_write_is_never_written_as_decided(
    world: tuple[Database, list[Target]], kind: str
) -> None:
    golden, targets = world
    leads = [target.lead for target in targets]
    with support.cloned(golden) as reference_db:
        change(reference_db, kind, targets)
        reference_run = drain(reference_db)
        reference = kpi_links(reference_db)
    if kind == "person_changed":  # read live, although no build has seen the change
        assert reference_run.persons_read_live == len(targets)
    with support.cloned(golden) as probed:
        with changed_before_each_write(probed, kind, targets) as changed:
            summary = drain(probed)
        assert sorted(changed) == sorted(leads), "every picked lead changed mid-run"
        links = kpi_links(probed)
        # no link the live data does not support: each is one the reference run wrote
        assert {
            lead: person for lead, person in links.items() if reference.get(lead) != person
        } == {}
        # and none for a changed lead, from what the run had read before the change
        assert set(links) & set(leads) == set()
        outcomes = last_outcomes(probed, leads)
        if kind in SKIP_REASON:
            assert summary.skipped_by_reason == {SKIP_REASON[kind]: len(leads)}
            assert outcomes == {}, "a lead left out has no attempt row"
        elif kind == "person_changed":
            assert set(outcomes.values()) == {("failed", "person_changed")}
            # and every other lead decided on one of those persons' old keys
            recorded = probed.query(
                "select person_key, evidence -> 'person_changed' ->> 'person_key'"
                " from kpi_red.match_attempts where fail_reason = 'person_changed'"
            )
            assert len(recorded) == summary.failed_by_reason["person_changed"] >= len(leads)
            assert {row[0] for row in recorded} == {row[1] for row in recorded}
            assert {row[0] for row in recorded} == {target.person for target in targets}
        else:  # someone else's link to another person: recorded as a conflict, theirs kept
            assert set(outcomes.values()) == {("failed", "conflict")}
            kept = dict(
                probed.query(
                    "select source_pk, person_key from canon.identity_links"
                    " where source_pk = any(%s)",
                    (leads,),
                )
            )
            assert kept == {target.lead: target.other_person for target in targets}
        assert support.integrity_problems(probed) == {}
        # a follow-up run decides the changed leads on the live data
        drain(probed)
        final = kpi_links(probed)
        assert {
            lead: person for lead, person in final.items() if reference.get(lead) != person
        } == {}
        if kind != "person_changed":  # those wait for their back-off
            assert final == reference
        print(
            f"\nprobe {kind}: {len(leads)} leads changed between decide and write;"
            f" skipped {dict(summary.skipped_by_reason)}, failed {dict(summary.failed_by_reason)};"
            f" no unsupported link; the follow-up run's links equal the reference's:"
            f" {final == reference}"
        )
