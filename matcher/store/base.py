"""What every store module shares: connecting, expected errors as one line, the ``.sql``
files beside this module, and reads that wait out a running ``dbt build``.

The ``store`` package is the only code that talks to PostgreSQL. SQL is parameterized;
schema and table names from configuration are composed with ``psycopg.sql.Identifier``,
never spliced in as text.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TypeVar

import psycopg
from psycopg import sql

from matcher.secrets import first_line
from matcher.settings import Tables
from matcher.store import relations
from matcher.store.relations import Relation

Session = psycopg.Connection
"""A connection to PostgreSQL, as the modules outside ``store`` name it in type hints."""


class DatabaseError(Exception):
    """A database problem the user can act on; shown as one line, never with secrets."""


def qualified(name: Relation) -> sql.Identifier:
    return sql.Identifier(*name)


def table_names(tables: Tables) -> dict[str, sql.Composable]:
    """The tables of the data contract and the attempts log as placeholders of the
    ``.sql`` files: ``{leads}``, ``{registry}``, ``{claims}``, ``{links}``, ``{origin}``,
    ``{attempts}``, and the reviewers' logs ``{reviews}``, ``{removals}``."""
    return {
        "leads": qualified(tables.leads),
        "registry": qualified(tables.registry),
        "claims": qualified(tables.claims),
        "links": qualified(tables.links),
        "origin": qualified(tables.origin),
        "attempts": qualified(tables.attempts),
        "reviews": qualified(tables.reviews),
        "removals": qualified(tables.removals),
    }


@contextmanager
def connect(conninfo: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection whose expected failures become one-line ``DatabaseError``s."""
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, application_name="kpi-red")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {first_line(exc, conninfo)}") from None
    except psycopg.ProgrammingError as exc:  # a malformed connection string
        raise DatabaseError(f"invalid connection string: {first_line(exc, conninfo)}") from None
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        message = expected_error(exc, conninfo)
        if message is None:
            raise
        raise DatabaseError(message) from None


_TIMEOUTS: tuple[tuple[type[psycopg.Error], str, str], ...] = (
    (
        psycopg.errors.IdleInTransactionSessionTimeout,
        "idle_in_transaction_session_timeout",
        "raise it for the matcher's role (a batch's transaction stays open while it is written)",
    ),
    (
        psycopg.errors.TransactionTimeout,
        "transaction_timeout",
        "raise it for the matcher's role, or lower --batch-size",
    ),
    (psycopg.errors.IdleSessionTimeout, "idle_session_timeout", "raise it, or retry"),
    (
        psycopg.errors.LockNotAvailable,
        "lock_timeout",
        "another session held a lock the matcher needs (a dbt build replacing a relation?); retry",
    ),
)


def expected_error(exc: psycopg.Error, conninfo: str) -> str | None:
    """One line naming an expected database failure, or None for an unexpected one (a
    bug: it keeps its traceback). A batch is one transaction: whatever failed, nothing of
    the open batch was written, and the batches committed before it stand."""
    text = first_line(exc, conninfo)
    for kind, setting, advice in _TIMEOUTS:
        if isinstance(exc, kind):
            return f"{text} ({setting}): {advice}"
    if isinstance(exc, psycopg.errors.QueryCanceled):
        if "statement timeout" in text:
            return (
                f"{text} (statement_timeout): raise it for the matcher's role, or lower"
                " --batch-size"
            )
        return text
    if isinstance(exc, psycopg.errors.OutOfMemory):  # the lock table: a lock per lead
        return f"{text}: lower --batch-size or --writers, or raise max_locks_per_transaction"
    if isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure):
        return f"{text}: retry"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"permission denied: {text}"
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return f"{text} (run `kpi-red init` and `dbt build` first)"
    if isinstance(exc, psycopg.OperationalError):
        return f"lost the connection to PostgreSQL: {text}"
    return None


REBUILD_WAIT_SECONDS = 120.0
"""How long a read waits for a dbt view that a running build dropped and will re-create."""
REBUILD_LOCK_TIMEOUT = "100ms"
"""A read of dbt's views gives up a lock it waits for this long, and tries again: PostgreSQL
locks a view before the relations under it, and a build replacing one locks them the
other way round (`drop ... cascade`), so a read that waited could deadlock with it."""


def sql_text(name: str) -> str:
    """The text of ``matcher/store/sql/<name>``."""
    return resources.files("matcher.store").joinpath(f"sql/{name}").read_text()


def sql_sections(name: str) -> dict[str, str]:
    """``matcher/store/sql/<name>`` split at its ``-- name: <section>`` lines."""
    text = sql_text(name)
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("-- name: "):
            current = sections.setdefault(line.removeprefix("-- name: ").strip(), [])
        else:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def composed(file: str, section: str, **names: sql.Composable) -> sql.Composed:
    return sql.SQL(sql_sections(file)[section]).format(**names)


T = TypeVar("T")


def through_rebuilds(
    conn: psycopg.Connection,
    read: Callable[[], T],
    *,
    built: Relation = relations.BUILT_MARKER,
    wait: float | None = None,
) -> T:
    """``read()`` in a transaction of its own, tried again while a running ``dbt build``
    has dropped a view it reads (a view built on one dbt replaced goes with it until its
    own model runs) or holds a lock it needs for longer than ``REBUILD_LOCK_TIMEOUT``
    (given up at once, so the build never waits on a deadlock). A relation missing while
    ``built`` (a relation every build keeps) does not exist either fails at once: the
    project was never built. ``wait``: at most ``REBUILD_WAIT_SECONDS``."""
    wait = REBUILD_WAIT_SECONDS if wait is None else wait
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            with conn.transaction():
                conn.execute(f"set local lock_timeout = '{REBUILD_LOCK_TIMEOUT}'")
                return read()
        except psycopg.errors.UndefinedTable as exc:
            if not exists(conn, built):
                raise
            if time.monotonic() >= deadline:
                missing = exc.diag.message_primary or "a dbt relation is missing"
                raise DatabaseError(
                    f"{missing}: a dbt build is re-creating it (still missing after"
                    f" {wait:.0f} s); retry when the build has finished"
                ) from None
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
            if time.monotonic() >= deadline:
                raise DatabaseError(
                    f"another session holds a lock on what the matcher reads (a dbt build"
                    f" replacing a view?), still after {wait:.0f} s; retry when it is done"
                ) from None
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


def exists(conn: psycopg.Connection, relation: Relation) -> bool:
    row = conn.execute(
        "select to_regclass(%s) is not null", (qualified(relation).as_string(conn),)
    ).fetchone()
    return bool(row and row[0])
