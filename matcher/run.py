"""One matcher run: stream and decide the eligible backlog, then per batch claim and write.

A thread streams once (a server-side cursor, oldest lead first) and fetches candidates
for every key of a batch at once; another decides in pure Python; each runs a batch or
two ahead of the next stage. Each batch is one transaction on the writer: lock the
batch's leads (others' locked leads are skipped), drop the ones attempted or linked since
the stream read them, write links, origin and the attempts log, commit. A crash rolls
the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import psycopg

from matcher import db, match, pipeline
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
        row.lead_source_pk,
        row.created_at,
        row.identifiers_hash,
        row.full_name,
        match.drop_junk(keys, rules=rules, junk=junk),
    )


@dataclass(frozen=True)
class DecidedBatch:
    """Streamed leads and their decisions (one per row, same order), not yet claimed."""

    rows: list[db.BacklogLead]
    decisions: list[match.Decision]

    def head(self, count: int) -> DecidedBatch:
        return DecidedBatch(self.rows[:count], self.decisions[:count])


@dataclass(frozen=True)
class FoundBatch:
    """Streamed leads and the registry persons of their keys."""

    rows: list[db.BacklogLead]
    leads: list[match.Lead]
    index: match.CandidateIndex


def found_batches(
    conninfo: str,
    *,
    settings: Settings,
    rules: NormalizationRules,
    junk: frozenset[tuple[str, str]],
    batch_size: int,
) -> Iterator[FoundBatch]:
    """Stream the eligible backlog; per batch, the candidates of every key in one query."""
    with db.connect(conninfo, autocommit=True) as lookup:
        db.tune_lookups(lookup)
        stream = db.stream_eligible(conninfo, tables=settings.tables, batch_size=batch_size)
        with closing(stream):
            for rows in stream:
                leads = [to_lead(row, rules=rules, junk=junk) for row in rows]
                wanted = list({item for lead in leads for item in lead.keys.items()})
                index = match.CandidateIndex.from_rows(db.fetch_candidates(lookup, wanted))
                yield FoundBatch(rows, leads, index)


def decided_batches(
    found: Iterable[FoundBatch], conninfo: str, *, rules: NormalizationRules, options: MatchOptions
) -> Iterator[DecidedBatch]:
    """Decide each batch in pure Python (the near pass: one more query per batch).

    Deciding before claiming is safe: only the leads the writer then locks, unchanged
    since the stream read them, are written; the decisions of the others are dropped.
    """
    with db.connect(conninfo, autocommit=True) as lookup:
        db.tune_lookups(lookup)
        for batch in found:
            decisions = match.decide_batch(
                batch.leads, batch.index, name_threshold=options.name_threshold
            )
            if options.near:
                decisions = near_pass(lookup, decisions, rules=rules, options=options)
            yield DecidedBatch(batch.rows, decisions)


def write_batch(
    conn: psycopg.Connection,
    batch: DecidedBatch,
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    dry_run: bool,
) -> BatchResult:
    """Claim a decided batch and write it, in one transaction (rolled back when
    ``dry_run``): lock its leads (others' locked leads are skipped), drop the ones
    attempted or linked since the stream read them, write the rest."""
    tables = settings.tables
    with conn.transaction() as transaction:
        locked = db.lock_leads(conn, [row.lead_source_pk for row in batch.rows])
        mine = [row for row in batch.rows if row.lead_source_pk in locked]
        changed = db.changed_since_stream(conn, tables=tables, leads=mine) if mine else set()
        claimed = {row.lead_source_pk for row in mine} - changed
        decisions = [
            decision for decision in batch.decisions if decision.lead.lead_source_pk in claimed
        ]
        decisions, links_written, origins_written = write_decisions(
            conn, decisions, settings=settings, run_id=run_id, started_at=started_at
        )
        pause_for_tests()
        if dry_run:
            raise psycopg.Rollback(transaction)
    return BatchResult(
        decisions=decisions,
        skipped_locked=len(batch.rows) - len(mine),
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
    """The log row of a decision; the evidence as JSON with sorted keys (orjson: a tenth
    of the cost of ``json.dumps`` per lead; the text comes from PostgreSQL, valid UTF-8)."""
    return db.AttemptRow(
        decision.lead.lead_source_pk,
        decision.outcome,
        decision.fail_reason,
        decision.match_rule,
        decision.match_score,
        decision.person_key,
        orjson.dumps(decision.evidence, option=orjson.OPT_SORT_KEYS).decode(),
        decision.lead.identifiers_hash,
    )


@contextmanager
def rare_collections() -> Iterator[None]:
    """A run allocates millions of short-lived objects that reference counting frees; a
    batch keeps tens of thousands alive, so the cyclic collector's default threshold (700
    net allocations) ran it dozens of times per batch: measured, 40% of the decision
    time. Collect rarely during the run (memory stays flat: nothing cyclic is made per
    lead), and restore the thresholds after."""
    previous = gc.get_threshold()
    gc.freeze()  # what exists before the run is never traversed again
    gc.set_threshold(200_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def limited(
    batches: Iterable[DecidedBatch], counter: Callable[[], int], limit: int | None
) -> Iterable[DecidedBatch]:
    """Stop once ``limit`` leads are claimed; trim the last batch to fit."""
    for batch in batches:
        if limit is None:
            yield batch
            continue
        room = limit - counter()
        if room <= 0:
            return
        yield batch.head(room)


def run_match(
    conninfo: str,
    *,
    settings: Settings,
    options: MatchOptions,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> RunSummary:
    """Claim, decide and write up to ``options.limit`` eligible leads.

    Three stages, each a batch or two ahead of the next, so PostgreSQL and Python work
    at once: a thread streams leads and fetches their candidates (``found_batches``),
    another decides (``decided_batches``), this one claims and writes.
    """
    run_id = run_id or new_run_id()
    summary = RunSummary(run_id=run_id, dry_run=options.dry_run)
    clock = time.perf_counter()
    rules = NormalizationRules.from_vars(settings.vars)
    with db.connect(conninfo, autocommit=True) as writer:
        started_at = writer.execute("select now()").fetchone()[0]  # type: ignore[index]
        db.tune_lookups(writer)
        junk = db.load_junk(writer)
        found = found_batches(
            conninfo, settings=settings, rules=rules, junk=junk, batch_size=options.batch_size
        )
        with (
            rare_collections(),
            pipeline.ahead(found, name="kpi-red-find") as found_ahead,
            pipeline.ahead(
                decided_batches(found_ahead, conninfo, rules=rules, options=options),
                name="kpi-red-decide",
            ) as batches,
        ):
            for batch in limited(batches, lambda: summary.claimed, options.limit):
                result = write_batch(
                    writer,
                    batch,
                    settings=settings,
                    run_id=run_id,
                    started_at=started_at,
                    dry_run=options.dry_run,
                )
                summary.add(
                    result.decisions,
                    skipped_locked=result.skipped_locked,
                    skipped_changed=result.skipped_changed,
                    links_written=0 if options.dry_run else result.links_written,
                    origins_written=0 if options.dry_run else result.origins_written,
                )
                if progress is not None:
                    progress(len(batch.rows))
        if summary.claimed and not options.dry_run:
            db.analyze_written(writer, tables=settings.tables)
    summary.seconds = time.perf_counter() - clock
    return summary
