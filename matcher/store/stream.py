"""What a matcher run reads: the worklist copied from the backlog, streamed a page at a
time with the registry persons holding each key, the junk, the persons changed since the
build, the name sample and the persons one edit from a batch's values.

A run copies the eligible backlog into its session's worklist (a short statement), then
reads the worklist a page per statement with its candidates; no transaction stays open
between pages, so nothing a dbt build replaces waits on the run.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from matcher.records import BacklogLead, ChangedPersonKey
from matcher.registry import LiveRegistry
from matcher.settings import Tables
from matcher.store import relations
from matcher.store.base import (
    DatabaseError,
    composed,
    connect,
    qualified,
    sql_text,
    through_rebuilds,
)


@contextmanager
def session(conninfo: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection for one stage of a run (the stream, the near lookups, a
    writer), tuned for index lookups."""
    with connect(conninfo, autocommit=True) as conn:
        tune_lookups(conn)
        yield conn


def server_now(conn: psycopg.Connection) -> datetime:
    """The server's time: a run's ``started_at``."""
    return conn.execute("select now()").fetchone()[0]  # type: ignore[index]


def create_worklist(conn: psycopg.Connection) -> None:
    """The session's worklist table (temporary; needs TEMPORARY on the database)."""
    with conn.transaction():
        conn.execute(composed("stream.sql", "create"))


def load_worklist(
    conn: psycopg.Connection, *, limit: int | None, after: tuple[datetime, str] | None = None
) -> int:
    """Replace the worklist with eligible leads from dbt's live ``backlog_due`` and commit (a
    dbt build waits for this statement at most, never for a run): with ``limit``, the
    ``limit`` oldest after ``after`` (``(lead_created_at, lead_source_pk)``), else all of
    them, in lead order. Returns how many."""
    due = qualified(relations.DUE)

    def read() -> int:
        conn.execute(composed("stream.sql", "clear"))
        if limit is None:
            cursor = conn.execute(composed("stream.sql", "all", due=due))
        else:
            created_at, lead = after or (datetime.min.replace(tzinfo=UTC), "")
            cursor = conn.execute(
                composed("stream.sql", "oldest", due=due),
                {"after_created_at": created_at, "after_lead": lead, "limit": limit},
            )
        return cursor.rowcount

    return through_rebuilds(conn, read)


def stream_worklist(
    conn: psycopg.Connection, *, batch_size: int, tables: Tables
) -> Generator[list[BacklogLead], None, None]:
    """The worklist with its candidates, in its order, a page (``batch_size`` leads) per
    statement on the autocommit connection ``conn``: memory flat, and no transaction open
    between pages, so nothing a dbt build replaces (``person_keys`` with
    ``--full-refresh``) waits on the run, and no idle transaction can time out."""
    statement = composed(
        "stream.sql",
        "page",
        person_keys=qualified(relations.PERSON_KEYS),
        reviews=qualified(tables.reviews),
    )
    read = 0
    with conn.cursor(binary=True) as cursor:
        while True:
            rows = cursor.execute(statement, {"after": read, "size": batch_size}).fetchall()
            if rows:
                yield [BacklogLead._make(row) for row in rows]
            if len(rows) < batch_size:
                return
            read += len(rows)


def count_eligible(conn: psycopg.Connection) -> int:
    """How many leads are eligible now (for a progress bar)."""
    statement = sql.SQL("select count(*) from {}").format(qualified(relations.DUE))
    return through_rebuilds(conn, lambda: int(conn.execute(statement).fetchone()[0]))  # type: ignore[index]


def load_junk(conn: psycopg.Connection) -> frozenset[tuple[str, str]]:
    """``(key_type, key_value)`` pairs treated as absent, as dbt materialized them."""
    statement = sql.SQL("select key_type, key_value from {}").format(qualified(relations.JUNK))
    return through_rebuilds(
        conn, lambda: frozenset((row[0], row[1]) for row in conn.execute(statement))
    )


def load_changed_persons(conn: psycopg.Connection, *, limit: int) -> list[ChangedPersonKey]:
    """The keys of the registry persons changed since ``person_keys`` was built
    (dbt's live view ``person_keys_changed``: the same macros), for at most ``limit``
    persons (three rows each); more than that raises ``TooManyChangesError``."""
    statement = composed(
        "stream.sql", "changed_persons", changed=qualified(relations.PERSON_KEYS_CHANGED)
    )
    rows = through_rebuilds(
        conn, lambda: conn.execute(statement, {"rows": limit * 3 + 1}).fetchall()
    )
    if len(rows) > limit * 3:
        raise TooManyChangesError(
            f"more than {limit:,} registry persons changed since the last dbt build: run"
            " `dbt build` first (the matcher reads the changed ones live, up to that many)"
        )
    return [ChangedPersonKey._make(row) for row in rows]


class TooManyChangesError(DatabaseError):
    """Too many registry persons changed since the last build to read them live."""


REGISTRY_SAMPLE_PAGES = 800
"""Blocks of ``person_keys`` the registry sample reads: some 25,000 persons, whatever the
size of the registry (a few milliseconds)."""


def sample_names(conn: psycopg.Connection) -> list[str | None]:
    """The names of a repeatable block sample of ``person_keys``' persons (all of them
    when the table is small), one per person: what ``TokenWeights`` counts words in."""
    template = sql_text("registry_sample.sql")
    statement = sql.SQL(template).format(
        person_keys=qualified(relations.PERSON_KEYS),
        person_keys_name=sql.Literal(relations.name(relations.PERSON_KEYS)),
        target_pages=sql.Literal(REGISTRY_SAMPLE_PAGES),
    )
    return [row[0] for row in conn.execute(statement).fetchall()]


def load_key_shapes(conn: psycopg.Connection) -> list[tuple[str, str, int, bool]]:
    """``(key_type, kind, value_length, has_letters)``: the shapes of the registry's
    documents and phones as the last build stored them (``edits.KeyShapes``)."""
    statement = sql.SQL("select key_type, kind, value_length, has_letters from {}").format(
        qualified(relations.KEY_SHAPES)
    )
    return through_rebuilds(conn, lambda: conn.execute(statement).fetchall())


def tune_lookups(conn: psycopg.Connection) -> None:
    """The matcher's statements are index lookups (the stream's probes, the one-edit
    queries) and one batch's writes: launching parallel workers costs more than they
    save (measured: a 2,000-lead batch's candidate lookup took half the time without)."""
    conn.execute("set max_parallel_workers_per_gather = 0")


def near_candidatescomposed(key_types: Sequence[str]) -> sql.Composed:
    """``sql/near_candidates.sql`` once per key type, ``union all``: one parameter each
    (the values one edit off, separated by spaces)."""
    template = sql_text("near_candidates.sql")
    return sql.SQL("\nunion all\n").join(
        sql.SQL("({})").format(
            sql.SQL(template).format(
                person_keys=qualified(relations.PERSON_KEYS),
                junk=qualified(relations.JUNK),
                key_type=sql.Literal(key_type),
            )
        )
        for key_type in key_types
    )


NearRow = tuple[str, str, str, str | None, str]
"""``(key_type, key_value, person_key, full_name, identifiers_hash)``: a person holding a
value one edit from a batch's (``fetch_near_candidates``)."""


def fetch_near_candidates(
    conn: psycopg.Connection,
    probes: Mapping[str, Collection[str]],
    *,
    live: LiveRegistry | None = None,
) -> list[NearRow]:
    """The registry persons holding one of ``probes`` (key type -> the values one edit
    from a batch's, ``matcher.near.NearLookup.origins``), one statement with one
    index scan per key type (``sql/near_candidates.sql``). The persons changed since the
    build (``live``) are taken as they are now, not as the build stored them. A value
    held by two or more persons is shared and never a near candidate."""
    if not probes:
        return []
    statement = near_candidatescomposed(list(probes))
    params = [" ".join(values) for values in probes.values()]
    rows: list[NearRow] = conn.execute(statement, params).fetchall()
    if live:
        rows = [row for row in rows if row[2] not in live.changed]
        rows.extend(live.near_rows(probes))
    holders: dict[tuple[str, str], set[str]] = {}
    for key_type, key_value, person_key, _full_name, _hash in rows:
        holders.setdefault((key_type, key_value), set()).add(person_key)
    return [row for row in rows if len(holders[(row[0], row[1])]) == 1]
