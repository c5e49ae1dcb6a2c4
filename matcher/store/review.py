"""Every database call of ``kpi-red review``, ``kpi-red unlink`` and ``kpi-red explain``.

The statements are in ``matcher/store/sql/review/``; names come from the configuration and are
composed with ``psycopg.sql``. A write takes the matcher's per-lead advisory locks first,
then checks each lead against the live sources in the statement that writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from matcher.review import Decision, Outcome
from matcher.settings import Tables
from matcher.store import relations
from matcher.store.base import connect, qualified, sql_sections, table_names, through_rebuilds
from matcher.store.batch import LEAD_LOCK_KEY, ORIGIN_TAG, add_origins, identifiers_hash_sql


def _names(tables: Tables) -> dict[str, sql.Composable]:
    return {
        **table_names(tables),
        "backlog": qualified(relations.BACKLOG),
        "due": qualified(relations.DUE),
        "queue": qualified(relations.QUEUE),
        "person_keys": qualified(relations.PERSON_KEYS),
        "junk": qualified(relations.JUNK),
        "causes": qualified(relations.CAUSES),
        "origin_missing": qualified(relations.ORIGIN_MISSING),
        "lead_hash": identifiers_hash_sql("lead_rows"),
    }


def _statement(file: str, section: str, tables: Tables, **extra: sql.Composable) -> sql.Composed:
    names = {**_names(tables), **extra}
    if file == "read.sql":
        names["lead_hash"] = identifiers_hash_sql("leads")
    return sql.SQL(sql_sections(f"review/{file}")[section]).format(**names)


def _rows(
    conn: psycopg.Connection, statement: sql.Composed, params: dict[str, Any]
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


# --- writes -------------------------------------------------------------------------------


def apply_decisions(
    conn: psycopg.Connection,
    decisions: Sequence[Decision],
    *,
    tables: Tables,
    reviewer: str,
    decided_via: str,
    run_id: str,
) -> list[Outcome]:
    """Record ``decisions`` in one transaction: the leads' locks, one statement that checks
    and writes links and decisions, then origin rows for the linked persons that have none
    (the matcher's statement). One ``Outcome`` per decision, in order."""
    if not decisions:
        return []
    lock_key = sql.SQL(LEAD_LOCK_KEY.format(lead="wanted.lead_source_pk"))
    with conn.transaction():
        conn.execute(
            _statement("apply.sql", "lock", tables, lock_key=lock_key),
            {"leads": [decision.lead_source_pk for decision in decisions]},
        )
        rows = _rows(
            conn,
            _statement("apply.sql", "apply", tables),
            {
                "row_numbers": list(range(len(decisions))),
                "leads": [decision.lead_source_pk for decision in decisions],
                "persons": [decision.person_key for decision in decisions],
                "decisions": [decision.decision for decision in decisions],
                "notes": [decision.note for decision in decisions],
                "hashes": [decision.identifiers_hash for decision in decisions],
                "source_table": tables.lead_source_table,
                "linked_by": tables.review_linked_by,
                "run_id": run_id,
                "reviewer": reviewer,
                "decided_via": decided_via,
            },
        )
        linked = [(decisions[row["row_number"]], row) for row in rows if row["status"] == "linked"]
        if linked:
            add_origins(
                conn,
                tables=tables,
                person_keys=[decision.person_key for decision, _ in linked],
                origin_tags=[ORIGIN_TAG] * len(linked),
                source_pks=[decision.lead_source_pk for decision, _ in linked],
                created_at=[row["lead_created_at"] for _, row in linked],
                recorded_at=rows[0]["decided_at"],
            )
    return [Outcome(decision=decisions[row["row_number"]], status=row["status"]) for row in rows]


def unlink(
    conn: psycopg.Connection,
    *,
    tables: Tables,
    lead: str,
    reason: str,
    reviewer: str,
    force: bool,
    run_id: str,
) -> dict[str, Any]:
    """Remove the lead's link (the matcher's or a review's; any with ``force``), log it
    and reject its person, under the lead's lock, in one statement. Returns the link as
    it was (``person_key`` None: there was none) and ``removed`` (0 or 1)."""
    with conn.transaction():
        conn.execute(
            _statement(
                "unlink.sql",
                "lock",
                tables,
                lock_key=sql.SQL(LEAD_LOCK_KEY.format(lead="%(lead)s::text")),
            ),
            {"lead": lead},
        )
        (row,) = _rows(
            conn,
            _statement("unlink.sql", "unlink", tables),
            {
                "lead": lead,
                "reason": reason,
                "reviewer": reviewer,
                "force": force,
                "ours": [tables.linked_by, tables.review_linked_by],
                "source_table": tables.lead_source_table,
                "run_id": run_id,
            },
        )
    return row


# --- reads --------------------------------------------------------------------------------


def review_queue(
    conn: psycopg.Connection, *, tables: Tables, reasons: Sequence[str]
) -> list[dict[str, Any]]:
    """The red leads whose reason bucket is one of ``reasons``, oldest first, with their
    last attempt's evidence."""
    statement = _statement("read.sql", "queue", tables)
    return through_rebuilds(conn, lambda: _rows(conn, statement, {"reasons": list(reasons)}))


def rejections(
    conn: psycopg.Connection, *, tables: Tables, leads: Sequence[str]
) -> list[dict[str, Any]]:
    return _rows(conn, _statement("read.sql", "rejections", tables), {"leads": list(leads)})


def persons(
    conn: psycopg.Connection, *, tables: Tables, person_keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Registry persons as they are now, with the keys dbt normalized, by person key."""
    if not person_keys:
        return {}
    statement = _statement("read.sql", "persons", tables)
    rows = through_rebuilds(
        conn, lambda: _rows(conn, statement, {"persons": sorted(set(person_keys))})
    )
    return {row["person_key"]: row for row in rows}


def lead_story(conn: psycopg.Connection, *, tables: Tables, lead: str) -> dict[str, Any] | None:
    """Everything stored about one lead (None: no such lead), each part as rows."""

    def read() -> dict[str, Any] | None:
        params = {"lead": lead, "source_table": tables.lead_source_table}
        found = _rows(conn, _statement("read.sql", "lead", tables), params)
        if not found:
            return None
        story: dict[str, Any] = {"lead": found[0]}
        for part in ("backlog_row", "queue_row", "attempts", "link", "claims", "decisions"):
            story[part] = _rows(conn, _statement("read.sql", part, tables), params)
        story["removals"] = _rows(conn, _statement("read.sql", "removals", tables), params)
        return story

    return through_rebuilds(conn, read)


def key_holders(
    conn: psycopg.Connection, *, tables: Tables, keys: dict[str, str]
) -> list[dict[str, Any]]:
    """For each normalized key: its junk reason (if any) and the persons holding it."""
    statement = _statement("read.sql", "key_holders", tables)
    params = {"key_types": list(keys), "key_values": list(keys.values())}
    return through_rebuilds(conn, lambda: _rows(conn, statement, params))


def now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None
    return row[0]


def backlog_causes(conninfo: str, *, tables: Tables | None = None) -> list[dict[str, Any]] | None:
    """The backlog by cause now and the ORIGIN_MISSING persons (dbt's views: a reader
    role suffices), in a read-only transaction; None before a build made the views, or
    for a role that may read the metrics alone."""
    statement = _statement("read.sql", "causes", tables or Tables())
    with connect(conninfo) as conn:
        conn.read_only = True
        try:
            return through_rebuilds(
                conn, lambda: _rows(conn, statement, {}), built=relations.CAUSES, wait=10
            )
        except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege):
            return None


def bucket_leads(conninfo: str, *, reason: str, limit: int) -> list[dict[str, Any]]:
    """The red leads of one reason bucket, oldest first (the backlog view only: a reader
    role suffices)."""
    statement = _statement("read.sql", "bucket", Tables())
    with connect(conninfo) as conn:
        conn.read_only = True
        return through_rebuilds(
            conn,
            lambda: _rows(conn, statement, {"reason": reason, "limit": limit}),
            built=relations.BACKLOG,
            wait=10,
        )


def reset_logs(conn: psycopg.Connection, *, tables: Tables) -> None:
    """Empty the reviewers' logs, where ``kpi-red init`` made them (``kpi-red demo
    --reset``: decisions on the old demo leads would apply to the new ones)."""
    for log in (tables.reviews, tables.removals):
        exists = conn.execute(
            "select to_regclass(%s) is not null", (qualified(log).as_string(conn),)
        ).fetchone()
        if exists and exists[0]:
            conn.execute(sql.SQL("truncate {}").format(qualified(log)))
