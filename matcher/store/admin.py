"""What the project's administration runs: ``init`` (its schemas and the attempts log),
the embedded server's databases, ``repair-origin``, the cycle's lock and checks,
``grants`` and the catalog reads of ``doctor``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import sql

from matcher.settings import Roles, Tables
from matcher.store import relations
from matcher.store.base import (
    DatabaseError,
    connect,
    qualified,
    sql_sections,
    sql_text,
    table_names,
)
from matcher.store.batch import ORIGIN_TAG, add_origins

CYCLE_LOCK = (0x4B53, 1)  # the session lock that keeps two `kpi-red cycle`s apart


# --- kpi-red init -----------------------------------------------------------------------


def init_schema(
    conn: psycopg.Connection, tables: Tables, *, dbt_role: str | None = None
) -> list[str]:
    """Create what the project owns when missing: its schemas (the attempts log's and
    dbt's) and the attempts log. As ``dbt_role`` when given (``set local role``), so
    whoever runs it, it belongs to that role. Never touches an upstream table.
    Idempotent; returns the schemas and tables it created."""
    created: list[str] = []
    with conn.transaction():
        # two `init`s at once must not race on "create ... if not exists"
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi-red init'))")
        if dbt_role:
            _become(conn, dbt_role)
        user = _current_user(conn)
        logs = (tables.attempts[0], tables.reviews[0], tables.removals[0])
        for schema in dict.fromkeys((*logs, *relations.DBT_SCHEMAS)):
            if _owner(conn, "select nspowner from pg_namespace where nspname = %s", schema):
                continue
            try:
                conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            except psycopg.errors.InsufficientPrivilege:
                raise DatabaseError(
                    f"{user} may not create schema {schema} (CREATE on the database): as the"
                    " database's owner, run what `kpi-red grants --for database` prints"
                ) from None
            created.append(schema)
        attempts = ".".join(tables.attempts)
        owner = _owner(conn, sql_sections("admin.sql")["attempts_owner"], *tables.attempts)
        if owner and not owner[1]:
            raise DatabaseError(
                f"{attempts} belongs to {owner[0]}, not {user}: as {owner[0]} or a superuser,"
                f" run: alter table {qualified(tables.attempts).as_string(conn)}"
                f" owner to {sql.Identifier(user).as_string(conn)};"
            )
        if not owner:
            created.append(attempts)
        template = sql_text("init.sql")
        conn.execute(
            sql.SQL(template).format(
                attempts_schema=sql.Identifier(tables.attempts[0]),
                attempts=qualified(tables.attempts),
                attempts_name=sql.Literal(qualified(tables.attempts).as_string(conn)),
            )
        )
        # the reviewers' logs (``kpi-red review``, ``kpi-red unlink``)
        conn.execute(
            sql.SQL(sql_text("review/init.sql")).format(
                reviews=qualified(tables.reviews), removals=qualified(tables.removals)
            )
        )
    return created


def _become(conn: psycopg.Connection, role: str) -> None:
    """``set local role``, or a one-line error naming who may not act as whom."""
    user = _current_user(conn)
    try:
        with conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidParameterValue):
        raise DatabaseError(
            f"{user} may not act as {role} (var dbt_role): run it as {role}, or as a member of it"
        ) from None


def _current_user(conn: psycopg.Connection) -> str:
    return str(conn.execute("select current_user").fetchone()[0])  # type: ignore[index]


def _owner(conn: psycopg.Connection, query: str, *params: str) -> tuple[str, bool] | None:
    """The owner of the object ``query`` finds (a select of one owner oid), and whether
    the current role may act as it; None when there is no such object."""
    row = conn.execute(
        f"select owner::regrole::text, pg_has_role(owner, 'USAGE') from ({query}) as found (owner)",  # noqa: S608
        params,
    ).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def create_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def drop_database(conninfo: str, dbname: str) -> None:
    with connect(conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )


def repair_origin(conn: psycopg.Connection, *, tables: Tables, dry_run: bool = False) -> int:
    """An origin row for every linked person without one (ORIGIN_MISSING), whoever linked
    them, from their earliest link. Set-based and idempotent. Returns the rows added."""
    statement = sql.SQL(sql_text("repair_origin.sql")).format(**table_names(tables))
    with conn.transaction():
        due = conn.execute(
            statement, {"lead_source_table": tables.lead_source_table, "origin_tag": ORIGIN_TAG}
        ).fetchall()
        if dry_run:
            return len(due)
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        return add_origins(
            conn,
            tables=tables,
            person_keys=[row[0] for row in due],
            origin_tags=[row[1] for row in due],
            source_pks=[row[2] for row in due],
            created_at=[row[3] for row in due],
            recorded_at=now,
        )


def try_cycle_lock(conn: psycopg.Connection) -> bool:
    """The session lock of `kpi-red cycle` (on an autocommit connection held for the run)."""
    row = conn.execute("select pg_try_advisory_lock(%s, %s)", CYCLE_LOCK).fetchone()
    return bool(row and row[0])


def release_cycle_lock(conn: psycopg.Connection) -> None:
    conn.execute("select pg_advisory_unlock(%s, %s)", CYCLE_LOCK)


GRANT_PARTS = ("database", "upstream", "project")
"""The parts of ``kpi-red grants``, each run by the owner of its objects: the DBA, the
owner of the upstream tables, the dbt role."""


def grant_statements(tables: Tables, *, roles: Roles, part: str) -> str:
    """One part of ``sql/grants.sql`` with every schema, table and role quoted."""
    template = sql_sections("grants.sql")[part]
    for role in (roles.dbt, roles.matcher, roles.reader, roles.reviewer):
        if "$$" in role or not role:
            raise DatabaseError(f"role name {role!r} cannot be used (empty, or has $$)")

    def identifiers(names: Iterable[str]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(name) for name in dict.fromkeys(names))

    upstream = (tables.leads, tables.registry, tables.links, tables.origin, tables.claims)
    matcher_dbt_schemas = list(relations.MATCHER_SCHEMAS)
    statement = sql.SQL(template.strip() + "\n").format(
        dbt_role=sql.Identifier(roles.dbt),
        matcher_role=sql.Identifier(roles.matcher),
        reader_role=sql.Identifier(roles.reader),
        dbt_role_name=sql.Literal(roles.dbt),
        matcher_role_name=sql.Literal(roles.matcher),
        reader_role_name=sql.Literal(roles.reader),
        reviewer_role=sql.Identifier(roles.reviewer),
        reviewer_role_name=sql.Literal(roles.reviewer),
        reviewer_upstream_schemas=identifiers(
            name[0]
            for name in (tables.leads, tables.registry, tables.claims, tables.links, tables.origin)
        ),
        reviews_schema=sql.Identifier(tables.reviews[0]),
        review_schemas=identifiers((tables.attempts[0], tables.reviews[0], tables.removals[0])),
        upstream_schemas=identifiers(name[0] for name in upstream),
        matcher_upstream_schemas=identifiers(
            name[0]
            for name in (tables.leads, tables.registry, tables.claims, tables.links, tables.origin)
        ),
        **table_names(tables),
        attempts_schema=sql.Identifier(tables.attempts[0]),
        matcher_dbt_schemas=identifiers(matcher_dbt_schemas),
        reader_schema=sql.Identifier(relations.MARTS_SCHEMA),
    )
    return statement.as_string(None)


def doctor_rows(
    conn: psycopg.Connection, section: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One section of ``sql/doctor.sql`` (catalog reads only), as dicts."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql.SQL(sql_sections("doctor.sql")[section]), params)
        return cursor.fetchall()


def missing_relations(conn: psycopg.Connection) -> list[str]:
    """The dbt relations the matcher reads that do not exist (none after a good build)."""
    names = relations.RUN_NEEDS
    rows = conn.execute(
        sql.SQL(sql_sections("admin.sql")["missing_relations"]),
        ([schema for schema, _ in names], [name for _, name in names]),
    ).fetchall()
    missing = {row[0] for row in rows}
    return [".".join(name) for name in names if name[1] in missing]


def missing_sources(conn: psycopg.Connection, *, tables: Tables) -> list[str]:
    """The upstream tables every write re-checks live (leads, registry, claims) that do not
    exist: without them the matcher cannot tell that a lead is still unclaimed."""
    names = [tables.leads, tables.registry, tables.claims]
    rows = conn.execute(
        sql.SQL(sql_sections("admin.sql")["missing_sources"]),
        ([schema for schema, _ in names], [name for _, name in names]),
    ).fetchall()
    return [".".join(name) for name, (missing,) in zip(names, rows, strict=True) if missing]


def read_dbt_settings(conn: psycopg.Connection) -> dict[str, Any] | None:
    """Every var as the last ``dbt build`` used it (``ops.kpi_red_settings``), or None
    when no build has made that view yet."""
    try:
        with conn.transaction():
            rows = conn.execute(
                sql.SQL("select setting_name, setting_value from {}").format(
                    qualified(relations.SETTINGS)
                )
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    return {str(name): value for name, value in rows}


@contextmanager
def cycle_lock(conninfo: str) -> Iterator[psycopg.Connection | None]:
    """An autocommit connection holding the session lock of `kpi-red cycle` for as long
    as the block runs, or None when another cycle holds it. The server releases it when
    this process dies."""
    with connect(conninfo, autocommit=True) as guard:
        if not try_cycle_lock(guard):
            yield None
            return
        try:
            yield guard
        finally:
            release_cycle_lock(guard)


@contextmanager
def read_only(conninfo: str) -> Iterator[psycopg.Connection]:
    """A connection in a read-only transaction (``doctor``'s catalog reads)."""
    with connect(conninfo) as conn:
        conn.read_only = True
        yield conn


def initialize(conninfo: str, tables: Tables, *, dbt_role: str | None = None) -> list[str]:
    """``init_schema`` on a connection of its own (``kpi-red init``)."""
    with connect(conninfo) as conn:
        return init_schema(conn, tables, dbt_role=dbt_role)


def built_settings(conninfo: str) -> dict[str, Any] | None:
    """``read_dbt_settings`` on a connection of its own."""
    with connect(conninfo) as conn:
        return read_dbt_settings(conn)


def repair_origin_at(conninfo: str, *, tables: Tables, dry_run: bool = False) -> int:
    """``repair_origin`` on a connection of its own (``kpi-red repair-origin``)."""
    with connect(conninfo) as conn:
        return repair_origin(conn, tables=tables, dry_run=dry_run)
