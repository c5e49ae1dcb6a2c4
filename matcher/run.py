"""One matcher run: stream and decide the eligible backlog, then per batch claim and write.

A thread streams once (a server-side cursor, each lead with the registry persons of its
keys; oldest first when the run takes only some); another decides in pure Python; each
runs a batch or two ahead of the next stage. Writers (two by default, a connection each)
make each batch one transaction: stage its decisions, lock its leads (others' locked
leads are skipped), then one statement drops the ones attempted or linked since the
stream read them and writes links, origin and the attempts log; commit. A crash rolls
the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
import psycopg

from matcher import config, db, match, pipeline
from matcher.config import Settings
from matcher.names import TokenWeights
from matcher.normalize import NormalizationRules
from matcher.report import RunSummary

Progress = Callable[[int], None]


@dataclass(frozen=True)
class MatchOptions:
    limit: int | None = 1000
    """Most leads to claim; None for the whole eligible backlog."""
    batch_size: int = config.DEFAULT_BATCH_SIZE
    """Leads per transaction. Each writer holds an advisory lock per lead of its batch
    until it commits: ``batch_size * writers`` locks (PostgreSQL's lock table holds about
    ``max_locks_per_transaction * max_connections``, 6,400 by default)."""
    dry_run: bool = False
    name_threshold: float = match.DEFAULT_NAME_THRESHOLD
    name_mismatch_threshold: float = match.DEFAULT_NAME_MISMATCH_THRESHOLD
    name_min_bits: float = match.DEFAULT_NAME_MIN_BITS
    near: bool = True
    """Try documents and phones one edit away for leads the exact keys did not settle."""
    near_name_threshold: float = match.DEFAULT_NEAR_NAME_THRESHOLD
    near_name_min_bits: float = match.DEFAULT_NEAR_NAME_MIN_BITS
    near_min_length: int = match.NEAR_MIN_LENGTH
    """dbt's ``near_match_min_length`` (``run_match`` reads the var)."""
    writers: int = config.DEFAULT_WRITERS
    """Batches written at once, each on its own connection (PostgreSQL works on one
    while Python prepares the other)."""

    def name_rules(self, weights: TokenWeights) -> match.NameRules:
        return match.NameRules(
            threshold=self.name_threshold,
            mismatch_threshold=self.name_mismatch_threshold,
            min_bits=self.name_min_bits,
            near_threshold=self.near_name_threshold,
            near_min_bits=self.near_name_min_bits,
            weights=weights,
        )


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
        row.last_attempt_id,
    )


def candidate_rows(
    rows: Iterable[db.BacklogLead],
) -> Iterator[tuple[str, str, str, str | None]]:
    """``(key_type, key_value, person_key, full_name)`` of the persons streamed with the
    leads, for ``match.CandidateIndex.from_rows``."""
    for row in rows:
        if row.candidate_key_types is None:
            continue
        values = {"document": row.document_key, "phone": row.phone_key, "email": row.email_key}
        for key_type, person_key, full_name in zip(
            row.candidate_key_types,
            row.candidate_person_keys or (),
            row.candidate_names or (),
            strict=True,
        ):
            yield key_type, values[key_type] or "", person_key, full_name


@dataclass(frozen=True)
class FoundBatch:
    """Streamed leads and the registry persons of their keys."""

    leads: list[match.Lead]
    index: match.CandidateIndex


def found_batches(
    conninfo: str,
    *,
    rules: NormalizationRules,
    junk: frozenset[tuple[str, str]],
    options: MatchOptions,
) -> Iterator[FoundBatch]:
    """Stream the eligible backlog with the candidates of every key (one query): oldest
    first when the run takes only some (``--limit``)."""
    # a run that takes fewer leads than a batch fetches (and decides) no more than that
    batch_size = min(options.batch_size, options.limit or options.batch_size)
    stream = db.stream_eligible(
        conninfo, batch_size=batch_size, oldest_first=options.limit is not None
    )
    with closing(stream):
        for rows in stream:
            leads = [to_lead(row, rules=rules, junk=junk) for row in rows]
            yield FoundBatch(leads, match.CandidateIndex.from_rows(candidate_rows(rows)))


def decided_batches(
    found: Iterable[FoundBatch],
    conninfo: str,
    *,
    rules: NormalizationRules,
    names: match.NameRules,
    options: MatchOptions,
) -> Iterator[list[match.Decision]]:
    """Decide each batch in pure Python (the near pass: one more query per batch).

    Deciding before claiming is safe: only the leads the writer then locks, unchanged
    since the stream read them, are written; the decisions of the others are dropped.
    """
    with db.connect(conninfo, autocommit=True) as lookup:
        db.tune_lookups(lookup)
        for batch in found:
            decisions = match.decide_batch(batch.leads, batch.index, rules=names)
            if options.near:
                decisions = near_pass(
                    lookup,
                    decisions,
                    rules=rules,
                    names=names,
                    near_min_length=options.near_min_length,
                )
            yield decisions


def write_batch(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    dry_run: bool,
) -> BatchResult:
    """Claim a decided batch and write it, in one transaction (rolled back when
    ``dry_run``); see ``write_decisions``."""
    with conn.transaction() as transaction:
        result = write_decisions(
            conn, decisions, settings=settings, run_id=run_id, started_at=started_at
        )
        pause_for_tests()
        if dry_run:
            raise psycopg.Rollback(transaction)
    return result


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
    names: match.NameRules,
    near_min_length: int,
) -> list[match.Decision]:
    """The batch's unsettled documents and phones one edit away (one query)."""
    lookup = match.NearLookup.of(
        decisions, country_code=rules.country_code, min_length=near_min_length
    )
    if not lookup:
        return decisions
    found = db.fetch_near_candidates(conn, list(lookup.probes), lookup.variants)
    return match.decide_near(decisions, match.NearIndex.from_rows(found, lookup), rules=names)


def write_decisions(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
) -> BatchResult:
    """Claim and write decided leads inside the caller's transaction: stage them, lock
    them (leads another matcher holds are skipped), then one statement skips the ones
    attempted or linked since the stream read them and writes links (never overwriting
    one), origin for linked persons that have none, and one attempts-log row per lead.

    A lead decided matched that someone else linked meanwhile is recorded as a
    ``conflict`` (or, linked to the same person, as matched), never relinked."""
    tables = settings.tables
    db.stage(conn, map(staged_decision, decisions))
    locked_elsewhere = db.lock_staged(conn)
    written = db.write_staged(conn, tables=tables, run_id=run_id, started_at=started_at)
    left_out = locked_elsewhere.union(written.changed, written.linked_meanwhile)
    final = [decision for decision in decisions if decision.lead.lead_source_pk not in left_out]
    linked_meanwhile = set(written.linked_meanwhile)
    settled, origins_written = settle_linked_meanwhile(
        conn,
        [decision for decision in decisions if decision.lead.lead_source_pk in linked_meanwhile],
        settings=settings,
        run_id=run_id,
        started_at=started_at,
    )
    return BatchResult(
        decisions=final + settled,
        skipped_locked=len(locked_elsewhere),
        skipped_changed=len(written.changed) + len(written.linked_meanwhile) - len(settled),
        links_written=written.links_written,
        origins_written=written.origins_written + origins_written,
    )


def settle_linked_meanwhile(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
) -> tuple[list[match.Decision], int]:
    """Matched decisions for leads that got a link from someone else since the stream
    read them (rare): a link to another person makes a ``conflict``, one to the same
    person keeps the match; a lead whose link is gone again is left for the next run.
    Returns the decisions recorded and the origin rows added."""
    if not decisions:
        return [], 0
    existing = db.existing_links(
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
    origins_written = db.record_outcomes(
        conn,
        tables=settings.tables,
        run_id=run_id,
        started_at=started_at,
        decisions=[staged_decision(decision) for decision in settled],
    )
    return settled, origins_written


def evidence_json(decision: match.Decision) -> str:
    """The evidence as JSON with sorted keys (orjson: a tenth of the cost of
    ``json.dumps``; the text comes from PostgreSQL, valid UTF-8)."""
    return orjson.dumps(decision.evidence, option=orjson.OPT_SORT_KEYS).decode()


def staged_decision(decision: match.Decision) -> db.StagedDecision:
    lead = decision.lead
    return db.StagedDecision(
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
    )


@contextmanager
def tuned_interpreter() -> Iterator[None]:
    """The interpreter set for a run, restored after.

    - Collect rarely: a run allocates millions of short-lived objects that reference
      counting frees; a batch keeps tens of thousands alive, so the cyclic collector's
      default threshold (700 net allocations) ran it dozens of times per batch: measured,
      40% of the decision time. Memory stays flat: nothing cyclic is made per lead.
    - Switch threads often: a stage waiting on PostgreSQL gets the GIL back only when the
      running stage yields it, by default every 5 ms, and a batch makes several round
      trips. Measured on a 100k-lead drain: 5.8 s with 5 ms, 4.5 s with 0.2 ms.
    """
    thresholds = gc.get_threshold()
    switch_interval = sys.getswitchinterval()
    gc.freeze()  # what exists before the run is never traversed again
    gc.set_threshold(200_000, 20, 100)
    sys.setswitchinterval(0.0002)
    try:
        yield
    finally:
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def limited(
    batches: Iterable[list[match.Decision]], room: Callable[[], int | None]
) -> Iterator[list[match.Decision]]:
    """Trim each batch to ``room()`` leads; stop when there is none (None: no limit)."""
    for batch in batches:
        left = room()
        if left is None:
            yield batch
        elif left <= 0:
            return
        else:
            yield batch[:left]


def run_match(
    conninfo: str,
    *,
    settings: Settings,
    options: MatchOptions,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> RunSummary:
    """Claim, decide and write up to ``options.limit`` eligible leads.

    Stages run at once, each a batch or two ahead of the next, so PostgreSQL and Python
    work on both cores: a thread streams leads with their candidates (``found_batches``),
    another decides (``decided_batches``), ``options.writers`` threads claim and write, each
    on its own connection, a transaction per batch.
    """
    run_id = run_id or new_run_id()
    options = replace(
        options,
        near_min_length=int(settings.vars.get("near_match_min_length", options.near_min_length)),
    )
    summary = RunSummary(run_id=run_id, dry_run=options.dry_run)
    clock = time.perf_counter()
    rules = NormalizationRules.from_vars(settings.vars)
    tally = threading.Lock()
    in_flight = 0  # leads handed to a writer, not yet in the summary

    def room() -> int | None:
        """Leads still to hand out: claimed ones count, and so do those being written."""
        if options.limit is None:
            return None
        with tally:
            return options.limit - summary.claimed - in_flight

    def handed(batches: Iterable[list[match.Decision]]) -> Iterator[list[match.Decision]]:
        nonlocal in_flight
        for batch in limited(batches, room):
            with tally:
                in_flight += len(batch)
            yield batch

    def write(batches: Iterator[list[match.Decision]]) -> None:
        nonlocal in_flight
        with db.connect(conninfo, autocommit=True) as writer:
            db.tune_lookups(writer)
            for batch in batches:
                result = write_batch(
                    writer,
                    batch,
                    settings=settings,
                    run_id=run_id,
                    started_at=started_at,
                    dry_run=options.dry_run,
                )
                with tally:
                    in_flight -= len(batch)
                    summary.add(
                        result.decisions,
                        skipped_locked=result.skipped_locked,
                        skipped_changed=result.skipped_changed,
                        links_written=0 if options.dry_run else result.links_written,
                        origins_written=0 if options.dry_run else result.origins_written,
                    )
                    if progress is not None:
                        progress(len(batch))

    with db.connect(conninfo, autocommit=True) as conn:
        started_at = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        junk = db.load_junk(conn)
        names = options.name_rules(TokenWeights.from_names(db.sample_person_names(conn)))
        found = found_batches(conninfo, rules=rules, junk=junk, options=options)
        with (
            tuned_interpreter(),
            pipeline.ahead(found, name="kpi-red-find") as found_ahead,
            pipeline.ahead(
                decided_batches(found_ahead, conninfo, rules=rules, names=names, options=options),
                name="kpi-red-decide",
            ) as batches,
        ):
            pipeline.fan_out(handed(batches), write, workers=options.writers, name="kpi-red-write")
        if summary.claimed and not options.dry_run:
            db.analyze_written(conn, tables=settings.tables)
    summary.seconds = time.perf_counter() - clock
    return summary
