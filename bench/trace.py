"""Find the matcher's slowest statement and capture its ``EXPLAIN ANALYZE``.

The matcher runs in this process for a couple of batches while ``psycopg``'s
``Cursor.execute`` is wrapped to time every statement it sends (with its parameters).
The slowest one is then explained with ``analyze, buffers`` inside a transaction that is
rolled back, so a write statement changes nothing. No server setting
(``pg_stat_statements``, ``auto_explain``) is needed, so nothing of the shared server is
touched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

EXPLAINABLE = ("select", "with", "insert", "update", "delete", "merge", "declare")


@dataclass(frozen=True)
class Statement:
    seconds: float
    query: Any
    params: Any
    text: str
    is_many: bool


@contextmanager
def traced() -> Iterator[list[Statement]]:
    """Record every statement psycopg executes inside the block (any connection)."""
    recorded: list[Statement] = []
    original_execute = psycopg.Cursor.execute
    original_many = psycopg.Cursor.executemany

    def text_of(cursor: psycopg.Cursor, query: Any) -> str:
        if isinstance(query, sql.Composable):
            return query.as_string(cursor.connection)
        return query.decode() if isinstance(query, bytes) else str(query)

    def execute(self: psycopg.Cursor, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_execute(self, query, params, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            recorded.append(Statement(seconds, query, params, text_of(self, query), False))

    def executemany(self: psycopg.Cursor, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        rows = list(params_seq)
        started = time.perf_counter()
        try:
            return original_many(self, query, rows, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            sample = rows[0] if rows else None
            recorded.append(Statement(seconds, query, sample, text_of(self, query), True))

    # A named (server-side) cursor does its work in the fetches: each fetch is recorded
    # under the cursor's query, as ``declare ... cursor for``, which EXPLAIN accepts and
    # which plans the way a cursor is planned (``cursor_tuple_fraction``).
    original_declare = psycopg.ServerCursor.execute
    original_fetch = psycopg.ServerCursor.fetchmany
    declared: dict[int, tuple[Any, Any, str]] = {}

    def declare(self: psycopg.ServerCursor, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_declare(self, query, params, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            as_cursor = sql.SQL("declare kpi_red_bench_explain cursor for ") + _composable(query)
            declared[id(self)] = (as_cursor, params, text_of(self, as_cursor))
            recorded.append(Statement(seconds, as_cursor, params, declared[id(self)][2], False))

    def fetchmany(self: psycopg.ServerCursor, size: int = 0) -> Any:
        started = time.perf_counter()
        try:
            return original_fetch(self, size)
        finally:
            seconds = time.perf_counter() - started
            if id(self) in declared:
                query, params, text = declared[id(self)]
                recorded.append(Statement(seconds, query, params, text, False))

    patches = [
        (psycopg.Cursor, "execute", execute),
        (psycopg.Cursor, "executemany", executemany),
        (psycopg.ServerCursor, "execute", declare),
        (psycopg.ServerCursor, "fetchmany", fetchmany),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, replacement in patches:
        setattr(owner, name, replacement)
    try:
        yield recorded
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _composable(query: Any) -> sql.Composable:
    if isinstance(query, sql.Composable):
        return query
    return sql.SQL(query.decode() if isinstance(query, bytes) else query)


def summarize(recorded: list[Statement]) -> list[dict[str, Any]]:
    """Total seconds per distinct statement text, slowest first."""
    totals: dict[str, dict[str, Any]] = {}
    for statement in recorded:
        key = " ".join(statement.text.split())[:4000]
        entry = totals.setdefault(key, {"sql": key, "calls": 0, "seconds": 0.0, "max_s": 0.0})
        entry["calls"] += 1
        entry["seconds"] += statement.seconds
        entry["max_s"] = max(entry["max_s"], statement.seconds)
    ranked = sorted(totals.values(), key=lambda entry: -entry["seconds"])
    for entry in ranked:
        entry["seconds"] = round(entry["seconds"], 4)
        entry["max_s"] = round(entry["max_s"], 4)
    return ranked


def slowest_explainable(recorded: list[Statement]) -> tuple[Statement, float, int] | None:
    """The statement with the most total time over the run (a cursor's fetches summed),
    as its slowest single call, with that total and the number of calls. Statements on
    the matcher session's temporary tables (its worklist stream, a batch's staged write)
    are left out: another session cannot see those tables to explain them (their times
    are in ``summarize``)."""
    groups: dict[str, list[Statement]] = {}
    for statement in recorded:
        head = statement.text.lstrip().lower()
        if "pg_temp." in head:
            continue
        if head.startswith(EXPLAINABLE) and not head.startswith("explain"):
            groups.setdefault(" ".join(statement.text.split()), []).append(statement)
    if not groups:
        return None
    calls = max(groups.values(), key=lambda group: sum(item.seconds for item in group))
    return (
        max(calls, key=lambda item: item.seconds),
        sum(item.seconds for item in calls),
        len(calls),
    )


def explain_analyze(conninfo: str, statement: Statement, *, timeout_s: int = 600) -> str:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a recorded statement; always rolled back.

    Past ``timeout_s`` the plan without ``analyze`` is returned instead, marked so.
    """
    query = _composable(statement.query)
    with psycopg.connect(conninfo) as conn:
        try:
            conn.execute(sql.SQL("set local statement_timeout = {}").format(timeout_s * 1000))
            rows = conn.execute(
                sql.SQL("explain (analyze, buffers, format text) ") + query, statement.params
            ).fetchall()
        except psycopg.errors.QueryCanceled:
            conn.rollback()
            rows = conn.execute(sql.SQL("explain ") + query, statement.params).fetchall()
            rows = [(f"-- EXPLAIN ANALYZE cancelled after {timeout_s} s; the plan alone:",), *rows]
        finally:
            conn.rollback()
    return "\n".join(str(row[0]) for row in rows)


def run_traced(action: Callable[[], Any], *, env: Mapping[str, str]) -> tuple[list[Statement], Any]:
    """Run ``action`` with ``env`` set and every statement recorded."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with traced() as recorded:
            outcome = action()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return recorded, outcome
