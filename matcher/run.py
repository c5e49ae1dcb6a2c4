"""One matcher run: stream the eligible backlog, then per batch claim, decide and write.

The reader streams once (a server-side cursor, oldest lead first). Each batch is one
transaction on the writer: lock the batch's leads (others' locked leads are skipped),
drop the ones attempted or linked since the stream read them, fetch candidates for every
key at once, decide in pure Python, write links, origin and the attempts log, commit.
A crash rolls the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from matcher import db, match
from matcher.config import Settings
from matcher.normalize import NormalizationRules
from matcher.report import RunSummary

Progress = Callable[[int], None]


@dataclass(frozen=True)
class MatchOptions:
    limit: int | None = 1000
    """Most leads to claim; None for the whole eligible backlog."""
    batch_size: int = 500
    dry_run: bool = False
    name_threshold: float = match.DEFAULT_NAME_THRESHOLD
    near: bool = True
    """Try documents and phones one edit away for leads the exact keys did not settle."""
    near_name_threshold: float = match.DEFAULT_NEAR_NAME_THRESHOLD


@dataclass(frozen=True)
class BatchResult:
    decisions: list[match.Decision]
    skipped_locked: int
    skipped_changed: int
    links_written: int
    origins_written: int


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def to_lead(
    row: db.BacklogLead, *, rules: NormalizationRules, junk: frozenset[tuple[str, str]]
) -> match.Lead:
    keys = {"document": row.document_key, "phone": row.phone_key, "email": row.email_key}
    return match.Lead(
        lead_source_pk=row.lead_source_pk,
        created_at=row.created_at,
        identifiers_hash=row.identifiers_hash,
        full_name=row.full_name,
        keys=match.drop_junk(keys, rules=rules, junk=junk),
    )


def process_batch(
    conn: psycopg.Connection,
    rows: Sequence[db.BacklogLead],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    rules: NormalizationRules,
    junk: frozenset[tuple[str, str]],
    options: MatchOptions,
) -> BatchResult:
    """One batch in one transaction (rolled back when ``options.dry_run``)."""
    tables = settings.tables
    with conn.transaction() as transaction:
        locked = db.lock_leads(conn, [row.lead_source_pk for row in rows])
        mine = [row for row in rows if row.lead_source_pk in locked]
        changed = db.changed_since_stream(conn, tables=tables, leads=mine) if mine else set()
        claimed = [row for row in mine if row.lead_source_pk not in changed]
        leads = [to_lead(row, rules=rules, junk=junk) for row in claimed]
        wanted = sorted({item for lead in leads for item in lead.keys.items()})
        index = match.CandidateIndex.from_rows(db.fetch_candidates(conn, wanted))
        decisions = match.decide_batch(leads, index, name_threshold=options.name_threshold)
        if options.near:
            decisions = near_pass(conn, decisions, rules=rules, options=options)
        decisions, links_written, origins_written = write_decisions(
            conn, decisions, settings=settings, run_id=run_id, started_at=started_at
        )
        pause_for_tests()
        if options.dry_run:
            raise psycopg.Rollback(transaction)
    return BatchResult(
        decisions=decisions,
        skipped_locked=len(rows) - len(mine),
        skipped_changed=len(mine) - len(claimed),
        links_written=links_written,
        origins_written=origins_written,
    )


TEST_PAUSE_ENV = "KPI_RED_TEST_PAUSE_AFTER_WRITES"


def pause_for_tests() -> None:
    """Test hook, a no-op unless ``KPI_RED_TEST_PAUSE_AFTER_WRITES=<seconds>`` is set: sleep
    after a batch's writes, before its commit, so the reliability tests can kill the
    matcher or drop its connection mid-batch (tests/python/test_reliability_*.py)."""
    seconds = os.environ.get(TEST_PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


def near_pass(
    conn: psycopg.Connection,
    decisions: list[match.Decision],
    *,
    rules: NormalizationRules,
    options: MatchOptions,
) -> list[match.Decision]:
    """Issue 8: the batch's unsettled documents and phones one edit away, in one query."""
    wanted = match.near_lookups(decisions, country_code=rules.country_code)
    if not wanted:
        return decisions
    index = match.NearIndex.from_rows(db.fetch_near_candidates(conn, wanted))
    return match.decide_near(
        decisions,
        index,
        near_name_threshold=options.near_name_threshold,
        country_code=rules.country_code,
    )


def write_decisions(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
) -> tuple[list[match.Decision], int, int]:
    """Links (never overwriting: a lead linked elsewhere meanwhile becomes a conflict),
    origin for linked persons that have none, one attempts-log row per lead. Runs inside
    the caller's transaction. Returns the final decisions and the rows added."""
    tables = settings.tables
    links = [
        db.LinkRow(
            lead_source_pk=decision.lead.lead_source_pk,
            person_key=decision.person_key or "",
            match_rule=decision.match_rule or "",
            match_score=decision.match_score,
        )
        for decision in decisions
        if decision.is_matched
    ]
    existing = db.insert_links(conn, tables=tables, run_id=run_id, links=links)
    final = [
        match.conflict_with_existing_link(decision, existing[decision.lead.lead_source_pk])
        if decision.is_matched
        and decision.lead.lead_source_pk in existing
        and existing[decision.lead.lead_source_pk] != decision.person_key
        else decision
        for decision in decisions
    ]
    matched = [decision for decision in final if decision.is_matched]
    origins = [
        db.OriginRow(
            person_key=decision.person_key or "",
            lead_source_pk=decision.lead.lead_source_pk,
            lead_created_at=decision.lead.created_at or started_at,
        )
        for decision in matched
    ]
    attempts = [attempt_row(decision) for decision in final]
    origins_written = db.record_outcomes(
        conn,
        tables=tables,
        run_id=run_id,
        started_at=started_at,
        origins=origins,
        attempts=attempts,
    )
    return final, len(links) - len(existing), origins_written


def attempt_row(decision: match.Decision) -> db.AttemptRow:
    return db.AttemptRow(
        lead_source_pk=decision.lead.lead_source_pk,
        outcome=decision.outcome,
        fail_reason=decision.fail_reason,
        match_rule=decision.match_rule,
        match_score=decision.match_score,
        person_key=decision.person_key,
        evidence=json.dumps(decision.evidence, sort_keys=True, ensure_ascii=False),
        identifiers_hash=decision.lead.identifiers_hash,
    )


def limited(
    batches: Iterable[list[db.BacklogLead]], counter: Callable[[], int], limit: int | None
) -> Iterable[list[db.BacklogLead]]:
    """Stop streaming once ``limit`` leads are claimed; trim the last batch to fit."""
    for batch in batches:
        if limit is None:
            yield batch
            continue
        room = limit - counter()
        if room <= 0:
            return
        yield batch[:room]


def run_match(
    conninfo: str,
    *,
    settings: Settings,
    options: MatchOptions,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> RunSummary:
    """Claim, decide and write up to ``options.limit`` eligible leads."""
    run_id = run_id or new_run_id()
    summary = RunSummary(run_id=run_id, dry_run=options.dry_run)
    clock = time.perf_counter()
    rules = NormalizationRules.from_vars(settings.vars)
    with db.connect(conninfo, autocommit=True) as writer:
        started_at = writer.execute("select now()").fetchone()[0]  # type: ignore[index]
        db.tune_writer(writer)
        junk = db.load_junk(writer)
        stream = db.stream_eligible(conninfo, tables=settings.tables, batch_size=options.batch_size)
        with closing(stream):
            for rows in limited(stream, lambda: summary.claimed, options.limit):
                result = process_batch(
                    writer,
                    rows,
                    settings=settings,
                    run_id=run_id,
                    started_at=started_at,
                    rules=rules,
                    junk=junk,
                    options=options,
                )
                summary.add(
                    result.decisions,
                    skipped_locked=result.skipped_locked,
                    skipped_changed=result.skipped_changed,
                    links_written=0 if options.dry_run else result.links_written,
                    origins_written=0 if options.dry_run else result.origins_written,
                )
                if progress is not None:
                    progress(len(rows))
        if summary.claimed and not options.dry_run:
            db.analyze_written(writer, tables=settings.tables)
    summary.seconds = time.perf_counter() - clock
    return summary
