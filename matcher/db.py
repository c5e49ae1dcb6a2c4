"""Everything that talks to PostgreSQL. The only module that runs SQL.

SQL is parameterized; schema and table names from configuration are composed with
``psycopg.sql.Identifier``, never spliced in as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg
from psycopg import sql

from matcher.config import Tables, redact


class DatabaseError(Exception):
    """A database problem the user can act on; shown as one line, never with secrets."""


def qualified(name: tuple[str, str]) -> sql.Identifier:
    return sql.Identifier(*name)


@contextmanager
def connect(conninfo: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection whose expected failures become one-line ``DatabaseError``s."""
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, application_name="kpi-red")
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {_first_line(exc, conninfo)}") from None
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection to PostgreSQL: {_first_line(exc, conninfo)}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(f"permission denied: {_first_line(exc, conninfo)}") from None
    except psycopg.errors.UndefinedTable as exc:
        raise DatabaseError(
            f"{_first_line(exc, conninfo)} (run `kpi-red init` and `dbt build` first)"
        ) from None


def _first_line(exc: BaseException, conninfo: str) -> str:
    text = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    # libpq may echo parts of the connection string; never let a password through.
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        return redact(text)
    if password:
        text = text.replace(str(password), "***")
    return text


# --- kpi-red init -----------------------------------------------------------------------


def init_schema(conn: psycopg.Connection, tables: Tables) -> None:
    """Create the three tables the matcher writes when missing. Idempotent."""
    template = resources.files("matcher").joinpath("sql/init.sql").read_text()
    statement = sql.SQL(template).format(
        links_schema=sql.Identifier(tables.links[0]),
        origin_schema=sql.Identifier(tables.origin[0]),
        attempts_schema=sql.Identifier(tables.attempts[0]),
        links=qualified(tables.links),
        origin=qualified(tables.origin),
        attempts=qualified(tables.attempts),
    )
    with conn.transaction():
        # two `init`s at once must not race on "create ... if not exists"
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi-red init'))")
        conn.execute(statement)


def create_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
            except psycopg.errors.DuplicateDatabase:
                pass


def drop_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))
