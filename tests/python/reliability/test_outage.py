"""The database goes away in the middle of a run.

The matcher's connection is dropped by the server (``pg_terminate_backend``: the writer
inside a batch, or the reader streaming the backlog), or the whole server is stopped (a
private embedded server of this test: the shared one under .data/pg is never touched).
Each time: one line on stderr, exit code 1, no traceback, no part of a batch written, and
a rerun finishes with the state of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import reliability_support as support
from conftest import Database

from matcher import demo, embedded
from matcher.store import admin as store_admin
from matcher.store import base as store_base

pytestmark = pytest.mark.reliability

PAUSE_SECONDS = 0.6

TERMINATE = """
    select count(pg_terminate_backend(activity.pid))
    from pg_stat_activity as activity
    where activity.datname = current_database()
        and activity.application_name = 'kpi-red'
        and exists (
            select 1
            from pg_locks as locks
            where locks.pid = activity.pid
                and locks.locktype = 'advisory'
                and locks.objsubid = 1
        ) = %(holds_locks)s
"""


def assert_failed_cleanly(stdout: str, stderr: str, returncode: int) -> None:
    assert returncode == 1, stderr
    assert stdout == ""
    assert support.one_line_error(stderr), stderr
    assert "PostgreSQL" in stderr


def assert_batches_whole_or_absent(database: Database, batches: list[set[str]]) -> None:
    attempted = set(support.attempts_per_lead(database))
    for batch in batches:
        assert batch & attempted in (set(), batch), "a partial batch is visible"
    held = set().union(*batches)
    assert held - attempted <= support.eligible_leads(database)
    assert support.lockable(database, held)
    assert support.integrity_problems(database) == {}


def finish_and_compare(database: Database, expected: support.MatcherState) -> None:
    rerun = support.run_kpi_red(database, *support.MATCH_ARGS)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["claimed"] > 0
    attempts = support.attempts_per_lead(database)
    assert set(attempts.values()) == {1}
    assert support.integrity_problems(database) == {}
    assert not support.eligible_leads(database)
    state = support.matcher_state(database)
    assert state.links == expected.links
    assert state.outcomes == expected.outcomes


@pytest.mark.parametrize("backend", ["writer", "reader"])
def test_a_dropped_connection_is_one_line_and_a_rerun_recovers(
    make_database: Callable[..., Database], backend: str
) -> None:
    reference = support.reference_state(make_database)
    with support.cloned(support.golden(make_database)) as database:
        process = support.start_match(database, pause=PAUSE_SECONDS)
        batches = support.wait_mid_batch(database, process)
        held = set().union(*batches)
        terminated = database.scalar(TERMINATE, {"holds_locks": backend == "writer"})
        # the writers hold the locks (one per batch paused mid-write); the reading stages
        # (stream, one-edit lookups) have a connection each
        assert terminated >= len(batches) if backend == "writer" else terminated >= 1
        stdout, stderr = process.communicate(timeout=60)
        assert_failed_cleanly(stdout, stderr, process.returncode)
        assert "lost the connection to PostgreSQL" in stderr
        print(f"\noutage ({backend} terminated): {stderr.strip()}")
        support.wait_until(lambda: support.matcher_backends(database) == 0, timeout=5)
        assert_batches_whole_or_absent(database, batches)
        if backend == "writer":  # terminated inside the batch: rolled back
            assert not held & set(support.attempts_per_lead(database))
        finish_and_compare(database, reference)


def test_a_stopped_server_is_one_line_and_a_rerun_recovers(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    """Another server, the same demo seed: the same links and outcomes as the reference."""
    reference = support.reference_state(make_database)
    with support.private_server() as handle:
        socket_dir = Path(handle.get_postmaster_info().socket_dir)
        database = support.database_on(socket_dir, "kpi_red_outage", tmp_path)
        with store_base.connect(database.conninfo) as conn:
            store_admin.init_schema(conn, database.settings.tables)
        demo.load(database.conninfo, database.settings, size="demo", seed=42)
        database.dbt("run")

        process = support.start_match(database, pause=PAUSE_SECONDS)
        batches = support.wait_mid_batch(database, process)
        held = set().union(*batches)
        handle.stop()
        stdout, stderr = process.communicate(timeout=60)
        assert_failed_cleanly(stdout, stderr, process.returncode)

        # while it is down: the same kind of message, at once
        down = support.run_kpi_red(database, *support.MATCH_ARGS)
        assert_failed_cleanly(down.stdout, down.stderr, down.returncode)
        assert "cannot connect to PostgreSQL" in down.stderr
        print(f"\noutage (server stopped mid-run): {stderr.strip()}")
        print(f"outage (server down): {down.stderr.strip()}")

        handle.start()
        socket_dir = Path(handle.get_postmaster_info().socket_dir)
        database = dataclasses.replace(
            database, conninfo=embedded.conninfo(socket_dir, database.name)
        )
        assert not held & set(support.attempts_per_lead(database))
        assert_batches_whole_or_absent(database, batches)
        finish_and_compare(database, reference)


def test_a_full_lock_table_is_one_line_with_what_to_change(
    make_database: Callable[..., Database],
) -> None:
    """Each writer holds a lock per lead of its batch: too many for PostgreSQL's lock table
    gives one line naming the options, not a "lost connection"."""
    database = make_database(init=False)
    with (
        pytest.raises(store_base.DatabaseError, match=r"--batch-size or --writers") as raised,
        store_base.connect(database.conninfo) as conn,
    ):
        conn.execute("select count(pg_advisory_xact_lock(key)) from generate_series(1, 100000) key")
    assert "out of shared memory" in str(raised.value)
