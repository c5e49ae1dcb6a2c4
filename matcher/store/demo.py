"""What ``kpi-red demo`` runs: the sections of ``sql/demo.sql`` with the configured
table names.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from matcher.settings import Tables
from matcher.store.base import connect, sql_sections, table_names


def demo_sql_sections() -> dict[str, str]:
    """``matcher/store/sql/demo.sql`` split at its ``-- name: <section>`` lines."""
    return sql_sections("demo.sql")


def run_demo_sql(
    conn: psycopg.Connection,
    section: str,
    *,
    tables: Tables,
    params: dict[str, object] | None = None,
) -> list[tuple[object, ...]]:
    """Run one section of ``demo.sql`` with the configured table names; its rows, if any.

    A section with ``params`` is one statement; one of several statements takes none.
    """
    statement = sql.SQL(demo_sql_sections()[section]).format(
        leads_schema=sql.Identifier(tables.leads[0]),
        registry_schema=sql.Identifier(tables.registry[0]),
        links_schema=sql.Identifier(tables.links[0]),
        origin_schema=sql.Identifier(tables.origin[0]),
        claims_schema=sql.Identifier(tables.claims[0]),
        **table_names(tables),
    )
    cursor = conn.execute(statement, params)
    return cursor.fetchall() if cursor.description else []


@contextmanager
def session(conninfo: str) -> Iterator[psycopg.Connection]:
    """One transaction for the whole load: a failure leaves no half-loaded data."""
    with connect(conninfo) as conn, conn.transaction():
        yield conn
