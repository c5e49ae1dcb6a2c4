"""One matcher run: read and decide the eligible backlog, then per batch claim and write.

The eligible leads are copied into the run's worklist (a short statement on the live
backlog view; a run with ``--limit`` copies the oldest it still needs, again when other
matchers took some), a thread streams the worklist with the registry persons of its keys
(dbt's stored keys, except the persons changed since the build, read as they are now),
another decides in pure Python (two with the one-edit pass: one decides while the other
waits for its lookup); each runs a batch or two ahead of the next stage. Writers
(two by default, a connection each) make each batch one transaction: stage its
decisions, lock its leads (others' locked leads are skipped), then one statement checks
every lead against the live sources and writes links, origin and the attempts log;
commit. A crash rolls the batch back and its locks vanish with the connection.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

from matcher import edits, match, near, pipeline
from matcher.edits import KeyShapes
from matcher.names import TokenWeights
from matcher.normalize import NormalizationRules
from matcher.records import BacklogLead, Decision, Lead
from matcher.registry import Holder, LiveRegistry
from matcher.report import RunSummary
from matcher.settings import DEFAULT_BATCH_SIZE, DEFAULT_WRITERS, Settings
from matcher.store import batch as writes
from matcher.store import stream
from matcher.store.base import Session
from matcher.write import DecidedBatch, write_batch

Progress = Callable[[int], None]

CHANGED_PERSONS_LIMIT = 10_000
"""Most registry persons changed since the last build that a run reads live (memory
stays flat); more than that and the run asks for a ``dbt build`` first."""


@dataclass(frozen=True)
class MatchOptions:
    limit: int | None = 1000
    """Most leads to claim; None for the whole eligible backlog."""
    batch_size: int = DEFAULT_BATCH_SIZE
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
    near_min_length: int = edits.NEAR_MIN_LENGTH
    """dbt's ``near_match_min_length`` (``run_match`` reads the var)."""
    writers: int = DEFAULT_WRITERS
    """Batches written at once, each on its own connection (PostgreSQL works on one
    while Python prepares the other)."""

    @property
    def deciders(self) -> int:
        """Batches decided at once, each on its own connection: with the near pass, two
        (one waits for its lookup on the server while the other decides in Python);
        without it, deciding is Python alone and one is as fast."""
        return 2 if self.near else 1

    def name_rules(self, weights: TokenWeights) -> match.NameRules:
        return match.NameRules(
            threshold=self.name_threshold,
            mismatch_threshold=self.name_mismatch_threshold,
            min_bits=self.name_min_bits,
            near_threshold=self.near_name_threshold,
            near_min_bits=self.near_name_min_bits,
            weights=weights,
        )


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def to_lead(row: BacklogLead) -> Lead:
    """The lead as ``match`` decides it, with the backlog view's keys: dbt has already left
    out absent, malformed and junk values (``int_lead_identifiers``)."""
    keys = {"document": row.document_key, "phone": row.phone_key, "email": row.email_key}
    return Lead(
        row.lead_source_pk,
        row.created_at,
        row.identifiers_hash,
        row.full_name,
        {key_type: value for key_type, value in keys.items() if value},
        row.last_attempt_id,
    )


def candidate_rows(
    rows: Iterable[BacklogLead], hashes: dict[str, str]
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

    leads: list[Lead]
    index: match.CandidateIndex
    person_hashes: Mapping[str, str] = field(default_factory=dict)
    rejected: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """lead -> the persons a reviewer rejected for it (``match.decide_batch``)."""


def found_batch(rows: Sequence[BacklogLead], *, live: LiveRegistry) -> FoundBatch:
    leads = [to_lead(row) for row in rows]
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
    registry: Future[LiveRegistry],
    options: MatchOptions,
    ledger: Ledger,
    settings: Settings,
) -> Iterator[FoundBatch]:
    """The eligible backlog with the candidates of every key: the whole of it, or (with
    ``--limit``) the oldest, in as many worklists as it takes to reach the limit.
    ``registry`` is the persons changed since the build, read meanwhile."""
    # a run that takes fewer leads than a batch fetches (and decides) no more than that
    batch_size = min(options.batch_size, options.limit or options.batch_size)
    with stream.session(conninfo) as conn:
        stream.create_worklist(conn)
        after: tuple[datetime, str] | None = None
        while (wanted := ledger.reserve()) != 0:
            loaded = stream.load_worklist(conn, limit=wanted, after=after)
            if wanted is not None and loaded < wanted:
                ledger.unread(wanted - loaded)
            live = registry.result()
            pages = stream.stream_worklist(conn, batch_size=batch_size, tables=settings.tables)
            with closing(pages):
                for rows in pages:
                    after = (rows[-1].created_at, rows[-1].lead_source_pk)
                    yield found_batch(rows, live=live)
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
    shapes: KeyShapes | None = None,
) -> Iterator[DecidedBatch]:
    """Decide each batch in pure Python (the near pass: one more query per batch); safe
    before claiming: the writer checks every lead against the live sources under its
    lock, and writes only what is still as decided."""
    with stream.session(conninfo) as lookup:
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
                    shapes=shapes,
                )
                if near_hashes:
                    hashes = {**hashes, **near_hashes}
            yield DecidedBatch(decisions, hashes)


def near_pass(
    conn: Session,
    decisions: list[Decision],
    *,
    rules: NormalizationRules,
    live: LiveRegistry,
    names: match.NameRules,
    near_min_length: int,
    rejected: Mapping[str, frozenset[str]] | None = None,
    shapes: KeyShapes | None = None,
) -> tuple[list[Decision], dict[str, str]]:
    """The batch's unsettled documents and phones one edit away (one query), and the
    identifiers hash of each person found (only values of the registry's ``shapes``)."""
    lookup = near.NearLookup.of(
        decisions,
        country_code=rules.country_code,
        min_length=near_min_length,
        shapes=shapes,
    )
    if not lookup:
        return decisions, {}
    found = stream.fetch_near_candidates(conn, lookup.origins, live=live)
    index = near.NearIndex.from_rows((row[:4] for row in found), lookup)
    decided = near.decide_near(decisions, index, rules=names, rejected=rejected or {})
    return decided, {row[2]: row[4] for row in found}


def sampled_weights(conninfo: str) -> TokenWeights:
    """The word weights of the registry's name sample (``stream.sample_names``)."""
    with stream.session(conninfo) as conn:
        return TokenWeights.from_names(stream.sample_names(conn))


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
    ``options.deciders`` threads decide (``decided_batches``, each with its connection for
    the one-edit lookups), ``options.writers`` threads claim and write, each on its own
    connection, a transaction per batch.
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
        with stream.session(conninfo) as writer:
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

    registry: Future[LiveRegistry] = Future()
    with stream.session(conninfo) as conn:
        started_at = stream.server_now(conn)
        found = found_batches(
            conninfo,
            registry=registry,
            options=options,
            ledger=ledger,
            settings=settings,
        )
        with (
            pipeline.tuned_interpreter(),
            pipeline.ahead(found, name="kpi-red-find") as found_ahead,
        ):
            # read while the stream copies the worklist; the name sample is read and its
            # words counted (its own connection) while the server reads the persons
            # changed since the build
            try:
                with ThreadPoolExecutor(1, thread_name_prefix="kpi-red-names") as counting:
                    sampled = counting.submit(sampled_weights, conninfo)
                    live = LiveRegistry.from_rows(
                        stream.load_changed_persons(conn, limit=CHANGED_PERSONS_LIMIT),
                        junk=stream.load_junk(conn) | rules.blocklisted,
                    )
                    weights = sampled.result()
            except BaseException as exc:
                registry.set_exception(exc)
                ledger.close()
                raise
            registry.set_result(live)
            summary.persons_read_live = len(live.changed)
            names = options.name_rules(weights)
            decide = partial(
                decided_batches,
                conninfo=conninfo,
                rules=rules,
                live=live,
                names=names,
                options=options,
                shapes=KeyShapes.from_rows(stream.load_key_shapes(conn)).with_values(live.holders),
            )
            with pipeline.stage_ahead(
                found_ahead, stage=decide, workers=options.deciders, name="kpi-red-decide"
            ) as batches:
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
            writes.analyze_written(
                conn,
                tables=settings.tables,
                attempts=summary.claimed,
                links=summary.links_written,
            )
    summary.seconds = time.perf_counter() - clock
    return summary


def count_eligible(conninfo: str) -> int:
    """How many leads are eligible now (for a progress bar)."""
    with stream.session(conninfo) as conn:
        return stream.count_eligible(conn)
