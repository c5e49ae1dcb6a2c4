"""How a matcher batch is written, in the writer's transaction: the decisions staged by
``COPY``, advisory locks on their leads, then one statement that re-checks them against
the live sources and writes links, origin and the attempts log. Never a statement per
lead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg import sql

from matcher.normalize import IDENTIFIER_COLUMNS, IDENTIFIERS_HASH_SQL
from matcher.records import StagedDecision, StagedWrite
from matcher.settings import Tables
from matcher.store.base import composed, qualified, table_names

LOCK_NAMESPACE = 0x4B52  # "KR": the seed of the leads' 64-bit lock keys (LEAD_LOCK_KEY)
LEAD_LOCK_KEY = f"hashtextextended({{lead}}, {LOCK_NAMESPACE})"
"""A lead's advisory lock key: a 64-bit hash, so two leads held at once (two writers of
a run hold thousands) practically never share a key; seeded with ``LOCK_NAMESPACE``."""
ORIGIN_TAG = "cabinet_lead"
"""The ``origin_tag`` of an origin row made from a cabinet lead's link."""
STAGE_TABLE = "kpi_red_batch"
STAGE_TYPES = [
    "text",
    "int8",
    "timestamptz",
    "text",
    "text",
    "text",
    "float4",
    "text",
    "text",
    "text",
    "text",
]
"""The staging table's column types: a binary ``COPY`` (several times cheaper in Python
than text, which escapes every value; the evidence becomes jsonb when it is written)."""


def stage(conn: psycopg.Connection, rows: Iterable[StagedDecision]) -> None:
    """``COPY`` a batch's decisions into the session's staging table (temporary, emptied
    at every commit or rollback): one statement for the batch, whatever its size."""
    conn.execute(composed("write_batch.sql", "stage", stage=sql.Identifier(STAGE_TABLE)))
    copy = sql.SQL("copy pg_temp.{stage} from stdin (format binary)").format(
        stage=sql.Identifier(STAGE_TABLE)
    )
    with conn.cursor() as cursor, cursor.copy(copy) as writer:
        writer.set_types(STAGE_TYPES)
        for row in rows:
            writer.write_row(row)


def lock_staged(conn: psycopg.Connection) -> set[str]:
    """Transaction-level advisory locks on the staged leads; the leads another matcher
    holds are dropped from the stage and returned. The locks vanish at commit, rollback
    or a dropped connection (a killed matcher)."""
    statement = composed(
        "write_batch.sql",
        "lock",
        stage=sql.Identifier(STAGE_TABLE),
        lock_key=sql.SQL(LEAD_LOCK_KEY.format(lead="staged.lead_source_pk")),
    )
    return {row[0] for row in conn.execute(statement).fetchall()}


def identifiers_hash_sql(alias: str) -> sql.Composable:
    """``normalize.IDENTIFIERS_HASH_SQL`` over the raw columns of ``alias`` (a lead or a
    registry row: the same five columns)."""
    return sql.SQL(IDENTIFIERS_HASH_SQL).format(
        **{column: sql.Identifier(alias, column) for column in IDENTIFIER_COLUMNS}
    )


def write_staged(
    conn: psycopg.Connection, *, tables: Tables, run_id: str, started_at: datetime
) -> StagedWrite:
    """Check the staged (and locked) batch against the live sources and write it, in one
    statement (``sql/write_batch.sql``): links for the matched leads (never
    overwriting one) and one attempts-log row per lead settled, every column set; then
    origin rows for the linked persons that have none (``add_origins``). Runs after
    ``lock_staged``, in a new statement, so what an earlier lock holder committed is
    visible."""
    statement = composed(
        "write_batch.sql",
        "write",
        stage=sql.Identifier(STAGE_TABLE),
        **table_names(tables),
        lead_hash=identifiers_hash_sql("lead_rows"),
        person_hash=identifiers_hash_sql("person_rows"),
    )
    row = conn.execute(
        statement,
        {
            "source_table": tables.lead_source_table,
            "linked_by": tables.linked_by,
            "run_id": run_id,
            "started_at": started_at,
        },
    ).fetchone()
    assert row is not None
    links, _attempts, skipped, person_changed, linked_meanwhile, written_at, *linked = row
    leads, persons, created_at = linked
    origins = add_origins(
        conn,
        tables=tables,
        person_keys=persons,
        origin_tags=[ORIGIN_TAG] * len(leads),
        source_pks=leads,
        created_at=created_at,
        recorded_at=written_at,
    )
    return StagedWrite(
        links_written=int(links),
        origins_written=int(origins),
        skipped=dict(entry.rsplit(" ", 1) for entry in skipped),
        person_changed=person_changed,
        linked_meanwhile=linked_meanwhile,
        written_at=written_at,
    )


def add_origins(
    conn: psycopg.Connection,
    *,
    tables: Tables,
    person_keys: Sequence[str | None],
    origin_tags: Sequence[str],
    source_pks: Sequence[str],
    created_at: Sequence[datetime | None],
    recorded_at: datetime,
) -> int:
    """An origin row for each person given that has none, from the earliest of its
    sources (``sql/origin.sql``: the one statement that writes origin rows). Returns how
    many were added."""
    if not person_keys:
        return 0
    row = conn.execute(
        composed("origin.sql", "add", origin=qualified(tables.origin)),
        {
            "person_keys": list(person_keys),
            "origin_tags": list(origin_tags),
            "source_pks": list(source_pks),
            "created_at": list(created_at),
            "recorded_at": recorded_at,
        },
    ).fetchone()
    return int(row[0]) if row else 0


def existing_links(
    conn: psycopg.Connection, *, tables: Tables, lead_pks: Sequence[str]
) -> dict[str, str]:
    """``{lead: person_key}`` of the leads among ``lead_pks`` that have a link."""
    if not lead_pks:
        return {}
    rows = conn.execute(
        composed("write_batch.sql", "existing_links", links=qualified(tables.links)),
        {"source_table": tables.lead_source_table, "lead_pks": list(lead_pks)},
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def record_outcomes(
    conn: psycopg.Connection,
    *,
    tables: Tables,
    run_id: str,
    started_at: datetime,
    written_at: datetime,
    decisions: Sequence[StagedDecision],
) -> int:
    """Decided leads written without staging (the rare leads linked by someone else
    meanwhile): origin rows for the matched ones' persons that have none, then one
    attempts-log row per lead by ``COPY``, stamped ``written_at``. Returns how many
    origin rows were added."""
    matched = [decision for decision in decisions if decision.outcome == "matched"]
    added = add_origins(
        conn,
        tables=tables,
        person_keys=[decision.person_key for decision in matched],
        origin_tags=[ORIGIN_TAG] * len(matched),
        source_pks=[decision.lead_source_pk for decision in matched],
        created_at=[decision.lead_created_at for decision in matched],
        recorded_at=written_at,
    )
    if decisions:
        copy = composed("write_batch.sql", "record_attempts", attempts=qualified(tables.attempts))
        with conn.cursor() as cursor, cursor.copy(copy) as rows:
            for decision in decisions:
                rows.write_row(
                    (
                        run_id,
                        decision.lead_source_pk,
                        decision.outcome,
                        decision.fail_reason,
                        decision.match_rule,
                        decision.match_score,
                        decision.person_key,
                        decision.evidence,
                        decision.identifiers_hash,
                        started_at,
                        written_at,
                    )
                )
    return added


def analyze_written(conn: psycopg.Connection, *, tables: Tables, attempts: int, links: int) -> None:
    """Fresh statistics on the attempts log and the links when a run added a tenth of
    their rows or more (a drain), so the next run's plans (the backlog view's attempt
    folds and anti-joins, the writers' re-check probes) see the rows just added instead
    of an empty table. Below that the plans do not move and autovacuum's own analyze
    follows (an hourly run's analyze of both cost 0.4 s at `medium`, a third of the run).
    A role that may not analyze them gets a warning from PostgreSQL, not an error."""
    for table, written in ((tables.attempts, attempts), (tables.links, links)):
        if not written:
            continue
        row = conn.execute(RELTUPLES, [qualified(table).as_string(conn)]).fetchone()
        known = row[0] if row else -1
        if known < 0 or written * 10 >= known:
            conn.execute(sql.SQL("analyze {}").format(qualified(table)))


RELTUPLES = "select reltuples from pg_class where oid = to_regclass(%s)"
"""The planner's row count of a table, -1 when never analyzed (no row: not visible)."""


@contextmanager
def transaction(conn: psycopg.Connection, *, rollback: bool = False) -> Iterator[None]:
    """One batch's transaction; rolled back at the end when ``rollback`` (a dry run)."""
    with conn.transaction() as current:
        yield
        if rollback:
            raise psycopg.Rollback(current)
