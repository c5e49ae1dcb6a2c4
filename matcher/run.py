"""One matcher run: read and decide the eligible backlog, then per batch claim and write.

The eligible leads are copied into the run's worklist (a short statement on the live
backlog view; a run with ``--limit`` copies the oldest it still needs, again when other
matchers took some), a thread streams the worklist with the registry persons of its keys
(dbt's stored keys, except the persons changed since the build, read as they are now),
another decides in pure Python; each runs a batch or two ahead of the next stage. Writers
(two by default, a connection each) make each batch one transaction: stage its
decisions, lock its leads (others' locked leads are skipped), then one statement checks
every lead against the live sources and writes links, origin and the attempts log;
commit. A crash rolls the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import orjson
import psycopg

from matcher import config, db, match, pipeline
from matcher.config import Settings
from matcher.names import TokenWeights
from matcher.normalize import NormalizationRules
from matcher.registry import Holder, LiveRegistry
from matcher.report import RunSummary

Progress = Callable[[int], None]

CHANGED_PERSONS_LIMIT = 10_000
"""Most registry persons changed since the last build that a run reads live (memory
stays flat); more than that and the run asks for a ``dbt build`` first."""


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
    """The decisions recorded in the attempts log, as recorded."""
    skipped_locked: int
    skipped: Mapping[str, int]
    """Leads left out because they changed since the stream read them, by reason
    (``db.SKIP_REASONS``)."""
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
    rows: Iterable[db.BacklogLead], hashes: dict[str, str]
) -> Iterator[tuple[str, str, str, str | None]]:
    """``(key_type, key_value, person_key, full_name)`` of the stored registry persons
    streamed with the leads, for ``match.CandidateIndex.from_rows``; each person's
    identifiers hash goes into ``hashes`` on the way (one pass: it runs per candidate)."""
    for row in rows:
        if row.candidate_key_types is None:
            continue
        values = {"document": row.document_key, "phone": row.phone_key, "email": row.email_key}
        for key_type, person_key, full_name, identifiers_hash in zip(
            row.candidate_key_types,
            row.candidate_person_keys or (),
            row.candidate_names or (),
            row.candidate_hashes or (),
            strict=True,
        ):
            hashes[person_key] = identifiers_hash
            yield key_type, values[key_type] or "", person_key, full_name


@dataclass(frozen=True)
class FoundBatch:
    """Streamed leads, the registry persons of their keys, and the identifiers hash of
    each of those persons when read (what the write checks the live registry against)."""

    leads: list[match.Lead]
    index: match.CandidateIndex
    person_hashes: Mapping[str, str] = field(default_factory=dict)
    rejected: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """lead -> the persons a reviewer rejected for it (``match.decide_batch``)."""


@dataclass(frozen=True)
class DecidedBatch:
    decisions: list[match.Decision]
    person_hashes: Mapping[str, str] = field(default_factory=dict)


def found_batch(
    rows: Sequence[db.BacklogLead],
    *,
    rules: NormalizationRules,
    junk: frozenset[tuple[str, str]],
    live: LiveRegistry,
) -> FoundBatch:
    leads = [to_lead(row, rules=rules, junk=junk) for row in rows]
    hashes: dict[str, str] = {}
    stored = candidate_rows(rows, hashes)
    rejected = {
        row.lead_source_pk: frozenset(row.rejected_person_keys)
        for row in rows
        if row.rejected_person_keys
    }
    if not live:  # no person changed since the build: the stored candidates as streamed
        return FoundBatch(leads, match.CandidateIndex.from_rows(stored), hashes, rejected)
    holders = live.holding(
        (Holder(*row, hashes[row[2]]) for row in stored),
        ((key_type, value) for lead in leads for key_type, value in lead.keys.items()),
    )
    index = match.CandidateIndex.from_rows(
        (holder.key_type, holder.key_value, holder.person_key, holder.full_name)
        for holder in holders
    )
    return FoundBatch(
        leads, index, {holder.person_key: holder.identifiers_hash for holder in holders}, rejected
    )


class Ledger:
    """How many more leads a run reads: its ``--limit`` minus the leads claimed and those
    on their way (read, not yet written or skipped). A lead another matcher took, or that
    changed, makes room for one more, so a run claims its limit whenever that many are
    eligible. Thread-safe: the stream reserves, the writers settle."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._claimed = 0
        self._pending = 0
        self._read_all = False
        self._closed = False
        self._changed = threading.Condition()

    def reserve(self) -> int | None:
        """How many leads to read next: None (no limit: the whole eligible backlog, once),
        a positive count, or 0 when the run is done. Waits while the leads on their way
        could still reach the limit."""
        with self._changed:
            if self.limit is None:
                done, self._read_all = self._read_all, True
                return 0 if done else None
            while not self._closed:
                wanted = self.limit - self._claimed - self._pending
                if wanted > 0:
                    self._pending += wanted
                    return wanted
                if self._pending == 0:
                    return 0
                self._changed.wait(timeout=0.5)
            return 0

    def unread(self, count: int) -> None:
        """Fewer leads than reserved were eligible."""
        self.settle(handed=count, claimed=0)

    def settle(self, *, handed: int, claimed: int) -> None:
        """A batch of ``handed`` leads was written, ``claimed`` of them recorded."""
        with self._changed:
            if self.limit is not None:
                self._pending -= handed
            self._claimed += claimed
            self._changed.notify_all()

    def close(self) -> None:
        """The run is ending (done or failed): a waiting reader stops."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


def found_batches(
    conninfo: str,
    *,
    rules: NormalizationRules,
    registry: Future[tuple[frozenset[tuple[str, str]], LiveRegistry]],
    options: MatchOptions,
    ledger: Ledger,
    settings: Settings,
) -> Iterator[FoundBatch]:
    """The eligible backlog with the candidates of every key: the whole of it, or (with
    ``--limit``) the oldest, in as many worklists as it takes to reach the limit.
    ``registry`` is the junk and the persons changed since the build, read meanwhile."""
    # a run that takes fewer leads than a batch fetches (and decides) no more than that
    batch_size = min(options.batch_size, options.limit or options.batch_size)
    with db.connect(conninfo, autocommit=True) as conn:
        db.tune_lookups(conn)
        with conn.transaction():
            db.create_worklist(conn)
        after: tuple[datetime, str] | None = None
        while (wanted := ledger.reserve()) != 0:
            loaded = db.load_worklist(conn, limit=wanted, after=after)
            if wanted is not None and loaded < wanted:
                ledger.unread(wanted - loaded)
            junk, live = registry.result()
            stream = db.stream_worklist(conn, batch_size=batch_size, tables=settings.tables)
            with closing(stream):
                for rows in stream:
                    after = (rows[-1].created_at, rows[-1].lead_source_pk)
                    yield found_batch(rows, rules=rules, junk=junk, live=live)
            if wanted is None or loaded < wanted:
                return


def decided_batches(
    found: Iterable[FoundBatch],
    conninfo: str,
    *,
    rules: NormalizationRules,
    live: LiveRegistry,
    names: match.NameRules,
    options: MatchOptions,
) -> Iterator[DecidedBatch]:
    """Decide each batch in pure Python (the near pass: two more queries per batch).

    Deciding before claiming is safe: the writer checks every lead against the live
    sources under its lock, and writes only what is still as decided.
    """
    with db.connect(conninfo, autocommit=True) as lookup:
        db.tune_lookups(lookup)
        for batch in found:
            decisions = match.decide_batch(
                batch.leads, batch.index, rules=names, rejected=batch.rejected
            )
            hashes = batch.person_hashes
            if options.near:
                decisions, near_hashes = near_pass(
                    lookup,
                    decisions,
                    rejected=batch.rejected,
                    rules=rules,
                    live=live,
                    names=names,
                    near_min_length=options.near_min_length,
                )
                if near_hashes:
                    hashes = {**hashes, **near_hashes}
            yield DecidedBatch(decisions, hashes)


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
    ``dry_run``); see ``write_decisions``."""
    with conn.transaction() as transaction:
        result = write_decisions(
            conn,
            batch.decisions,
            person_hashes=batch.person_hashes,
            settings=settings,
            run_id=run_id,
            started_at=started_at,
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
    live: LiveRegistry,
    names: match.NameRules,
    near_min_length: int,
    rejected: Mapping[str, frozenset[str]] | None = None,
) -> tuple[list[match.Decision], dict[str, str]]:
    """The batch's unsettled documents and phones one edit away (one query), and the
    identifiers hash of each person found."""
    lookup = match.NearLookup.of(
        decisions, country_code=rules.country_code, min_length=near_min_length
    )
    if not lookup:
        return decisions, {}
    found = db.fetch_near_candidates(conn, list(lookup.probes), lookup.variants, live=live)
    index = match.NearIndex.from_rows((row[:5] for row in found), lookup)
    decided = match.decide_near(decisions, index, rules=names, rejected=rejected or {})
    return decided, {row[3]: row[5] for row in found}


def write_decisions(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
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

    A lead that changed since the stream read it is left out (``db.SKIP_REASONS``); one
    decided matched whose person changed is recorded as failed ``person_changed``; one
    that someone else linked meanwhile is recorded as a ``conflict`` (or, linked to the
    same person, as matched), never relinked."""
    tables = settings.tables
    hashes = person_hashes or {}
    db.stage(conn, (staged_decision(decision, hashes) for decision in decisions))
    locked_elsewhere = db.lock_staged(conn)
    written = db.write_staged(conn, tables=tables, run_id=run_id, started_at=started_at)
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


def person_changed_failure(decision: match.Decision) -> match.Decision:
    """A match whose person changed before the write, as the attempts log records it."""
    return decision._replace(
        outcome="failed",
        fail_reason="person_changed",
        match_rule=None,
        match_score=None,
    )


def settle_linked_meanwhile(
    conn: psycopg.Connection,
    decisions: Sequence[match.Decision],
    *,
    settings: Settings,
    run_id: str,
    started_at: datetime,
    written_at: datetime,
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
        written_at=written_at,
        decisions=[staged_decision(decision) for decision in settled],
    )
    return settled, origins_written


def evidence_json(decision: match.Decision) -> str:
    """The evidence as JSON with sorted keys (orjson: a tenth of the cost of
    ``json.dumps``; the text comes from PostgreSQL, valid UTF-8)."""
    return orjson.dumps(decision.evidence, option=orjson.OPT_SORT_KEYS).decode()


def staged_decision(
    decision: match.Decision, person_hashes: Mapping[str, str] | None = None
) -> db.StagedDecision:
    lead = decision.lead
    person_hash = (
        (person_hashes or {}).get(decision.person_key or "") if decision.is_matched else None
    )
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
        person_hash,
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
    ledger = Ledger(options.limit)

    def write(batches: Iterator[DecidedBatch]) -> None:
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
                    summary.add(
                        result.decisions,
                        skipped_locked=result.skipped_locked,
                        skipped=result.skipped,
                        links_written=0 if options.dry_run else result.links_written,
                        origins_written=0 if options.dry_run else result.origins_written,
                    )
                    if progress is not None:
                        progress(len(batch.decisions))
                ledger.settle(handed=len(batch.decisions), claimed=len(result.decisions))

    registry: Future[tuple[frozenset[tuple[str, str]], LiveRegistry]] = Future()
    with db.connect(conninfo, autocommit=True) as conn:
        started_at = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        found = found_batches(
            conninfo,
            rules=rules,
            registry=registry,
            options=options,
            ledger=ledger,
            settings=settings,
        )
        with tuned_interpreter(), pipeline.ahead(found, name="kpi-red-find") as found_ahead:
            # read while the stream copies the worklist
            try:
                junk = db.load_junk(conn)
                live = LiveRegistry.from_rows(
                    db.load_changed_persons(conn, limit=CHANGED_PERSONS_LIMIT),
                    junk=junk | rules.blocklisted,
                    country_code=rules.country_code,
                    min_length=options.near_min_length,
                )
            except BaseException as exc:
                registry.set_exception(exc)
                ledger.close()
                raise
            registry.set_result((junk, live))
            summary.persons_read_live = len(live.changed)
            names = options.name_rules(TokenWeights.from_names(db.sample_person_names(conn)))
            decided = decided_batches(
                found_ahead, conninfo, rules=rules, live=live, names=names, options=options
            )
            with pipeline.ahead(decided, name="kpi-red-decide") as batches:
                # a failed writer (or an interrupt) closes the ledger: the stream stops
                # reading, so the other writers run out instead of waiting for a batch
                pipeline.fan_out(
                    batches,
                    write,
                    workers=options.writers,
                    name="kpi-red-write",
                    on_stop=ledger.close,
                )
        if summary.claimed and not options.dry_run:
            db.analyze_written(conn, tables=settings.tables)
    summary.seconds = time.perf_counter() - clock
    return summary
