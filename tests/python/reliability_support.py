"""Helpers for the reliability tests (``tests/python/reliability/``) and the others that
change the world under a run.

- ``golden``: one demo database (size ``demo``, seed 42) with dbt's models built, made
  once per session and never written to; tests work on ``cloned`` copies of it (``create
  database ... template``: a quarter of a second instead of a load and a build).
- ``reference_state``: what one uninterrupted matcher run makes of it, the yardstick for
  concurrent, killed and disconnected runs.
- the matcher as a subprocess, paused mid-batch (``reliability/paused_matcher.py``), and a
  way to see which leads it holds.
- table checksums, integrity checks, a private embedded server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from conftest import PROFILE_TEMPLATE, PROJECT_DIR, Database
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from matcher import demo, embedded
from matcher.run import MatchOptions, run_match
from matcher.settings import load_settings
from matcher.store import batch as store_batch

KPI_RED = str(Path(sys.executable).with_name("kpi-red"))
PAUSED_MATCHER = str(Path(__file__).with_name("reliability") / "paused_matcher.py")
BATCH_SIZE = 100
MATCH_ARGS = ("match", "--limit", "0", "--batch-size", str(BATCH_SIZE), "--json")
# the matcher's advisory locks: one 64-bit key per lead (objsubid 1 in pg_locks)
LEAD_LOCK_KEY = store_batch.LEAD_LOCK_KEY.format(lead="leads.lead_id::text")
HELD_LOCK_KEY = "((locks.classid::bigint << 32) | locks.objid::bigint)"

_session: dict[str, Any] = {}


# --- databases ------------------------------------------------------------------------


def golden(make_database: Callable[..., Database]) -> Database:
    """The session's demo database, loaded and built once (``dbt run``: models only; the
    data tests belong to test_dbt_models). Clone it; never write to it."""
    if "golden" not in _session:
        database = make_database()
        demo.load(database.conninfo, database.settings, size="demo", seed=42)
        database.dbt("run")
        _session["golden"] = database
    return _session["golden"]  # type: ignore[no-any-return]


def cycled(make_database: Callable[..., Database]) -> Database:
    """The session's demo database after one cycle (``golden``, matched, ``dbt run``):
    what a reviewer finds. Clone it; never write to it."""
    if "cycled" not in _session:
        database = clone(golden(make_database), Path(tempfile.mkdtemp(prefix="kpi-red-cycled-")))
        run_match(database.conninfo, settings=database.settings, options=MatchOptions(limit=None))
        database.dbt("run")
        _session["cycled"] = database
    return _session["cycled"]  # type: ignore[no-any-return]


def socket_dir_of(database: Database) -> Path:
    return Path(conninfo_to_dict(database.conninfo)["host"])  # type: ignore[arg-type]


def clone(source: Database, home: Path) -> Database:
    """A new database with ``source``'s rows, dbt relations and grants."""
    socket_dir = socket_dir_of(source)
    name = f"{source.name}_{uuid.uuid4().hex[:6]}"
    statement = sql.SQL("create database {} template {}").format(
        sql.Identifier(name), sql.Identifier(source.name)
    )
    with psycopg.connect(embedded.conninfo(socket_dir, "postgres"), autocommit=True) as conn:
        for attempt in range(100):
            try:
                conn.execute(statement)
                break
            except psycopg.errors.ObjectInUse:  # a connection to the template is closing
                if attempt == 99:
                    raise
                time.sleep(0.1)
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.yml").write_text(PROFILE_TEMPLATE.format(host=socket_dir, dbname=name))
    return Database(
        name=name,
        conninfo=embedded.conninfo(socket_dir, name),
        profiles_dir=home,
        target_path=home / "target",
        settings=source.settings,
    )


@contextmanager
def cloned(source: Database, home: Path | None = None) -> Iterator[Database]:
    """``clone``, dropped afterwards (with force: a killed matcher's backends included)."""
    directory = home or Path(tempfile.mkdtemp(prefix="kpi-red-clone-"))
    database = clone(source, directory)
    try:
        yield database
    finally:
        embedded.drop_database(socket_dir_of(database), database.name)
        if home is None:
            shutil.rmtree(directory, ignore_errors=True)


# --- what the matcher left behind ------------------------------------------------------


@dataclass(frozen=True)
class MatcherState:
    """What a finished matcher leaves: the links it wrote and each lead's last outcome."""

    links: frozenset[tuple[str, str]]
    outcomes: dict[str, tuple[str, str | None, str | None]]
    """lead -> (outcome, fail_reason, person_key) of its last attempt."""


def matcher_state(database: Database) -> MatcherState:
    links = database.query(
        "select source_pk, person_key from canon.identity_links where linked_by = 'kpi-red'"
    )
    outcomes = database.query(
        """
        select distinct on (lead_source_pk) lead_source_pk, outcome, fail_reason, person_key
        from kpi_red.match_attempts
        order by lead_source_pk, attempt_id desc
        """
    )
    return MatcherState(
        links=frozenset((lead, person) for lead, person in links),
        outcomes={lead: (outcome, reason, person) for lead, outcome, reason, person in outcomes},
    )


def reference_state(make_database: Callable[..., Database]) -> MatcherState:
    """One uninterrupted in-process run over a fresh clone of the golden database."""
    if "reference" not in _session:
        with cloned(golden(make_database)) as database:
            summary = run_match(
                database.conninfo,
                settings=database.settings,
                options=MatchOptions(limit=None, batch_size=BATCH_SIZE),
            )
            assert summary.claimed > 1000 and summary.matched > 0
            _session["reference"] = matcher_state(database)
    return _session["reference"]  # type: ignore[no-any-return]


def eligible_leads(database: Database) -> set[str]:
    rows = database.query(
        "select lead_source_pk from ops.v_cabinet_kpi_red_backlog where is_eligible"
    )
    return {row[0] for row in rows}


def attempts_per_lead(database: Database) -> dict[str, int]:
    rows = database.query(
        "select lead_source_pk, count(*) from kpi_red.match_attempts group by lead_source_pk"
    )
    return {lead: int(count) for lead, count in rows}


def integrity_problems(database: Database) -> dict[str, int]:
    """Counts that must all be zero whatever happened to a run: every link kpi-red wrote
    has the 'matched' attempt of the same run and person and vice versa, every person it
    linked has an origin row, links and origin rows are unique, no lead attempted twice."""
    row = database.query(
        """
        select
            (
                select count(*)
                from canon.identity_links as links
                where links.linked_by = 'kpi-red'
                    and not exists (
                        select 1
                        from kpi_red.match_attempts as attempts
                        where attempts.run_id = links.run_id
                            and attempts.lead_source_pk = links.source_pk
                            and attempts.outcome = 'matched'
                            and attempts.person_key = links.person_key
                    )
            ) as links_without_attempt,
            (
                select count(*)
                from kpi_red.match_attempts as attempts
                where attempts.outcome = 'matched'
                    and not exists (
                        select 1
                        from canon.identity_links as links
                        where links.source_table = 'cabinet_leads'
                            and links.source_pk = attempts.lead_source_pk
                            and links.run_id = attempts.run_id
                            and links.person_key = attempts.person_key
                    )
            ) as matched_without_link,
            (
                select count(*)
                from canon.identity_links as links
                where links.linked_by = 'kpi-red'
                    and not exists (
                        select 1
                        from canon.identity_origin as origin
                        where origin.person_key = links.person_key
                    )
            ) as linked_without_origin,
            (
                select count(*) - count(distinct (source_table, source_pk))
                from canon.identity_links
            ) as duplicate_links,
            (
                select count(*) - count(distinct person_key) from canon.identity_origin
            ) as duplicate_origins,
            (
                select count(*) - count(distinct lead_source_pk) from kpi_red.match_attempts
            ) as repeated_attempts
        """
    )[0]
    names = (
        "links_without_attempt",
        "matched_without_link",
        "linked_without_origin",
        "duplicate_links",
        "duplicate_origins",
        "repeated_attempts",
    )
    return {name: int(value) for name, value in zip(names, row, strict=True) if value}


def checksums(database: Database, schemas: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Row count and md5 of the rows (as text, sorted) of every table and view in
    ``schemas`` (default: every schema that is not PostgreSQL's own). ``loaded_at`` and
    ``loaded_xmin`` (when a dbt run wrote a row, and its snapshot's xmin: run metadata,
    not data) are left out."""
    relations = database.query(
        """
        select table_schema, table_name
        from information_schema.tables
        where table_schema not in ('pg_catalog', 'information_schema')
            and table_schema not like 'pg\\_%%'
            and (%(schemas)s::text[] is null or table_schema = any(%(schemas)s::text[]))
        order by table_schema, table_name
        """,
        {"schemas": schemas},
    )
    result: dict[str, tuple[int, str]] = {}
    with database.connect() as conn:
        for schema, table in relations:
            statement = sql.SQL(
                "select count(*),"
                " coalesce(md5(string_agg(row_text, chr(10) order by row_text)), '')"
                " from (select (to_jsonb(rows_) - 'loaded_at' - 'loaded_xmin')::text"
                " as row_text from {} as rows_)"
                " as rows_text"
            ).format(sql.Identifier(schema, table))
            count, digest = conn.execute(statement).fetchone()  # type: ignore[misc]
            result[f"{schema}.{table}"] = (int(count), str(digest))
    return result


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


# --- the matcher as a process ----------------------------------------------------------


def start_match(
    database: Database, *, pause: float | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``kpi-red match --limit 0 --batch-size 100 --json`` in the background."""
    env = {**os.environ, **database.cli_env(), **(extra_env or {})}
    return subprocess.Popen(
        kpi_red_command(MATCH_ARGS, pause=pause),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_kpi_red(
    database: Database, *args: str, pause: float | None = None
) -> subprocess.Popen[str]:
    """``kpi-red <args>`` in the background (paused after each batch's writes)."""
    env = {**os.environ, **database.cli_env()}
    return subprocess.Popen(
        kpi_red_command(args, pause=pause),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kpi_red_command(args: tuple[str, ...], *, pause: float | None) -> list[str]:
    """``kpi-red <args>``, or with ``pause`` the same through ``paused_matcher.py``."""
    if pause:
        return [sys.executable, PAUSED_MATCHER, str(pause), *args]
    return [KPI_RED, *args]


def run_kpi_red(database: Database, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **database.cli_env()}
    return subprocess.run(
        [KPI_RED, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


HELD_LEADS = sql.SQL("""
    select held.pid, leads.lead_id
    from cabinet.leads as leads
    inner join (
        select locks.pid, {held_lock_key} as lock_key
        from pg_stat_activity as activity
        inner join pg_locks as locks
            on locks.pid = activity.pid
        where activity.datname = current_database()
            and activity.application_name = 'kpi-red'
            and activity.state = 'idle in transaction'
            -- the batch's writes are done: the pause after them, or a long idle
            and (
                activity.query ilike '%%insert into%%match_attempts%%'
                or activity.state_change < clock_timestamp() - interval '300 milliseconds'
            )
            and locks.locktype = 'advisory'
            and locks.objsubid = 1
            and locks.granted
    ) as held
        on held.lock_key = {lead_lock_key}
""").format(held_lock_key=sql.SQL(HELD_LOCK_KEY), lead_lock_key=sql.SQL(LEAD_LOCK_KEY))


def wait_mid_batch(
    database: Database,
    process: subprocess.Popen[str],
    *,
    timeout: float = 30,
    fresh: bool = False,
) -> list[set[str]]:
    """Wait until the matcher sits inside a batch transaction after its writes; return
    the leads of each batch it holds (one per writer connection paused there).

    ``fresh``: wait for a batch that was not held when the wait began, so that one has
    just begun its pause (a batch seen at once may be at the end of its pause, about to
    commit)."""
    deadline = time.monotonic() + timeout
    seen: set[frozenset[str]] | None = None
    with database.connect(autocommit=True) as conn:
        while time.monotonic() < deadline:
            batches: dict[int, set[str]] = {}
            for pid, lead in conn.execute(HELD_LEADS).fetchall():
                batches.setdefault(pid, set()).add(lead)
            held = {frozenset(batch) for batch in batches.values()}
            if seen is None and fresh:
                seen = held
            elif held - (seen or set()):
                return list(batches.values())
            if process.poll() is not None:
                raise AssertionError(f"the matcher ended first: {process.communicate()}")
            time.sleep(0.01)
    raise AssertionError("the matcher never paused mid-batch")


def matcher_backends(database: Database) -> int:
    return int(
        database.scalar(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and application_name = 'kpi-red'"
        )
    )


def wait_until(condition: Callable[[], bool], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.02)


def lockable(database: Database, leads: set[str]) -> bool:
    """Can a new matcher take every one of these leads' advisory locks right now?"""
    with database.connect() as conn:
        locked = conn.execute(
            sql.SQL(
                "select count(*) from cabinet.leads as leads"
                " where leads.lead_id = any(%s) and pg_try_advisory_xact_lock({lock_key})"
            ).format(lock_key=sql.SQL(LEAD_LOCK_KEY)),
            (sorted(leads),),
        ).fetchone()
        return locked is not None and locked[0] == len(leads)


def one_line_error(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr


# --- a private embedded server -----------------------------------------------------------


@contextmanager
def private_server() -> Iterator[Any]:
    """An embedded PostgreSQL of our own in a temporary directory (stopped and deleted
    afterwards): the one under .data/pg is shared and must never be stopped."""
    directory = Path(tempfile.mkdtemp(prefix="kpi-red-rel-"))
    handle = embedded._pgserver().get_server(directory / "pg", cleanup_mode=None)
    try:
        yield handle
    finally:
        handle.stop()
        shutil.rmtree(directory, ignore_errors=True)


def database_on(socket_dir: Path, name: str, home: Path) -> Database:
    """A ``Database`` for ``name`` on another server (a private one)."""
    embedded.create_database(socket_dir, name)
    home.mkdir(parents=True, exist_ok=True)
    (home / "profiles.yml").write_text(PROFILE_TEMPLATE.format(host=socket_dir, dbname=name))
    return Database(
        name=name,
        conninfo=embedded.conninfo(socket_dir, name),
        profiles_dir=home,
        target_path=home / "target",
        settings=load_settings(PROJECT_DIR),
    )
