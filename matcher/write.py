"""One batch's claim and write, in one transaction on a writer's connection: stage the
decisions, lock their leads (others' locked leads are skipped), then one statement checks
every lead against the live sources and writes links, origin and the attempts log. A
crash rolls the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from matcher import match
from matcher.records import Decision, StagedDecision
from matcher.settings import Settings
from matcher.store import batch as store
from matcher.store.base import Session


@dataclass(frozen=True)
class DecidedBatch:
    decisions: list[Decision]
    person_hashes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    decisions: list[Decision]
    """The decisions recorded in the attempts log, as recorded."""
    skipped_locked: int
    skipped: Mapping[str, int]
    """Leads left out because they changed since the stream read them, by reason
    (``records.SKIP_REASONS``)."""
    links_written: int
    origins_written: int


def write_batch(
    conn: Session,
    batch: DecidedBatch,
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    dry_run: bool,
) -> BatchResult:
    """Claim a decided batch and write it, in one transaction (rolled back when
    ``dry_run``); see ``write_decisions``."""
    with store.transaction(conn, rollback=dry_run):
        return write_decisions(
            conn,
            batch.decisions,
            person_hashes=batch.person_hashes,
            settings=settings,
            run_id=run_id,
            started_at=started_at,
        )


def write_decisions(
    conn: Session,
    decisions: Sequence[Decision],
    *,
    person_hashes: Mapping[str, str] | None = None,
    settings: Settings,
    run_id: str,
    started_at: datetime,
) -> BatchResult:
    """Claim and write decided leads inside the caller's transaction: stage them, lock
    them (leads another matcher holds are skipped), then one statement checks each lead
    against the live sources and writes what still stands as decided: links (never
    overwriting one), origin for linked persons that have none, one attempts-log row per
    lead. ``person_hashes`` are the chosen persons' identifiers hashes when decided (a
    matched lead without one is never linked).

    A lead that changed since the stream read it is left out (``records.SKIP_REASONS``); one
    decided matched whose person changed is recorded as failed ``person_changed``; one
    that someone else linked meanwhile is recorded as a ``conflict`` (or, linked to the
    same person, as matched), never relinked."""
    tables = settings.tables
    hashes = person_hashes or {}
    store.stage(conn, (staged_decision(decision, hashes) for decision in decisions))
    locked_elsewhere = store.lock_staged(conn)
    written = store.write_staged(conn, tables=tables, run_id=run_id, started_at=started_at)
    person_changed = set(written.person_changed)
    linked_meanwhile = set(written.linked_meanwhile)
    left_out = locked_elsewhere.union(written.skipped, linked_meanwhile)
    final = [
        person_changed_failure(decision)
        if decision.lead.lead_source_pk in person_changed
        else decision
        for decision in decisions
        if decision.lead.lead_source_pk not in left_out
    ]
    settled, origins_written = settle_linked_meanwhile(
        conn,
        [decision for decision in decisions if decision.lead.lead_source_pk in linked_meanwhile],
        settings=settings,
        run_id=run_id,
        started_at=started_at,
        written_at=written.written_at,
    )
    skipped = Counter(written.skipped.values())
    if unsettled := len(linked_meanwhile) - len(settled):
        skipped["linked_meanwhile"] += unsettled
    return BatchResult(
        decisions=final + settled,
        skipped_locked=len(locked_elsewhere),
        skipped=skipped,
        links_written=written.links_written,
        origins_written=written.origins_written + origins_written,
    )


def person_changed_failure(decision: Decision) -> Decision:
    """A match whose person changed before the write, as the attempts log records it."""
    return decision._replace(
        outcome="failed",
        fail_reason="person_changed",
        match_rule=None,
        match_score=None,
    )


def settle_linked_meanwhile(
    conn: Session,
    decisions: Sequence[Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    written_at: datetime,
) -> tuple[list[Decision], int]:
    """Matched decisions for leads that got a link from someone else since the stream
    read them (rare): a link to another person makes a ``conflict``, one to the same
    person keeps the match; a lead whose link is gone again is left for the next run.
    Returns the decisions recorded and the origin rows added."""
    if not decisions:
        return [], 0
    existing = store.existing_links(
        conn,
        tables=settings.tables,
        lead_pks=[decision.lead.lead_source_pk for decision in decisions],
    )
    settled = [
        decision
        if existing[decision.lead.lead_source_pk] == decision.person_key
        else match.conflict_with_existing_link(decision, existing[decision.lead.lead_source_pk])
        for decision in decisions
        if decision.lead.lead_source_pk in existing
    ]
    origins_written = store.record_outcomes(
        conn,
        tables=settings.tables,
        run_id=run_id,
        started_at=started_at,
        written_at=written_at,
        decisions=[staged_decision(decision) for decision in settled],
    )
    return settled, origins_written


def evidence_json(decision: Decision) -> str:
    """The evidence as JSON with sorted keys (orjson: a tenth of the cost of
    ``json.dumps``; the text comes from PostgreSQL, valid UTF-8)."""
    return orjson.dumps(decision.evidence, option=orjson.OPT_SORT_KEYS).decode()


def staged_decision(
    decision: Decision, person_hashes: Mapping[str, str] | None = None
) -> StagedDecision:
    lead = decision.lead
    person_hash = (
        (person_hashes or {}).get(decision.person_key or "") if decision.is_matched else None
    )
    return StagedDecision(
        lead.lead_source_pk,
        lead.last_attempt_id,
        lead.created_at,
        decision.outcome,
        decision.fail_reason,
        decision.match_rule,
        decision.match_score,
        decision.person_key,
        evidence_json(decision),
        lead.identifiers_hash,
        person_hash,
    )
