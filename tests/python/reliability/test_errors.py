"""Expected database failures name what happened, in one line, with no traceback.

Each runs ``kpi-red match`` as a user does (a process) against a copy of the demo
database, with the server setting that causes it given in the DSN's ``options``: a
statement timeout, an idle-in-transaction timeout (the batch paused inside its
transaction by the reliability tests' hook), a lock timeout (another session holding the
attempts log), and the backlog view missing while a build re-creates it (waited for,
then named). Nothing of the failed batch is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
import reliability_support as support
from click.testing import CliRunner
from conftest import Database

from matcher.cli import main
from matcher.store import base as store_base

pytestmark = pytest.mark.reliability


def match_with(
    database: Database,
    setting: str,
    *,
    pause: float | None = None,
    args: tuple[str, ...] = ("--limit", "300", "--batch-size", "100"),
) -> tuple[int, str]:
    env = {**database.cli_env(), "KPI_RED_DSN": f"{database.conninfo} options='-c {setting}'"}
    process = subprocess.run(
        support.kpi_red_command(("match", *args), pause=pause),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return process.returncode, process.stderr


@pytest.mark.parametrize(
    ("setting", "pause", "expected"),
    [
        (
            "statement_timeout=5",
            None,
            "Error: canceling statement due to statement timeout (statement_timeout): raise it"
            " for the matcher's role, or lower --batch-size",
        ),
        (
            "idle_in_transaction_session_timeout=200",
            0.6,
            "Error: terminating connection due to idle-in-transaction timeout"
            " (idle_in_transaction_session_timeout): raise it for the matcher's role",
        ),
    ],
)
def test_a_timeout_is_named_in_one_line(
    make_database: Callable[..., Database], setting: str, pause: float | None, expected: str
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        code, stderr = match_with(database, setting, pause=pause)
        assert code == 1
        assert support.one_line_error(stderr), stderr
        assert stderr.startswith(expected), stderr
        assert support.integrity_problems(database) == {}
        assert database.scalar("select count(*) from kpi_red.match_attempts") % 100 == 0


def test_a_run_of_one_batch_whose_writer_fails_ends(
    make_database: Callable[..., Database],
) -> None:
    """One batch, two writers: the one that gets it fails, the other must not wait for a
    next batch (the stream, under --limit, waits for room the failed batch never gives)."""
    with support.cloned(support.golden(make_database)) as database:
        code, stderr = match_with(
            database, "idle_in_transaction_session_timeout=200", pause=0.6, args=("--limit", "100")
        )
        assert code == 1
        assert support.one_line_error(stderr), stderr
        assert "idle-in-transaction timeout" in stderr


def test_a_lock_timeout_of_a_write_is_named_in_one_line(
    make_database: Callable[..., Database],
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        with database.connect() as holder:
            holder.execute("lock table canon.identity_origin in access exclusive mode")
            code, stderr = match_with(database, "lock_timeout=200")
        assert code == 1
        assert support.one_line_error(stderr), stderr
        assert stderr.startswith(
            "Error: canceling statement due to lock timeout (lock_timeout): another session"
            " held a lock the matcher needs"
        ), stderr
        assert database.scalar("select count(*) from kpi_red.match_attempts") == 0


def test_a_read_waits_for_a_lock_a_moment_then_runs(
    make_database: Callable[..., Database],
) -> None:
    """What a build replacing a view does to the matcher's read: the read gives the lock
    up at once (so the two never deadlock) and tries again until it is free."""
    with support.cloned(support.golden(make_database)) as database:
        holder = database.connect()
        holder.execute("lock table kpi_red.match_attempts in access exclusive mode")
        threading.Timer(1.5, holder.commit).start()
        started = time.monotonic()
        result = CliRunner().invoke(main, ["match", "--json"], env=database.cli_env())
        holder.close()
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["claimed"] == 1000
        assert time.monotonic() - started >= 1.5


def test_a_view_dbt_is_re_creating_is_waited_for_then_named(
    make_database: Callable[..., Database], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_base, "REBUILD_WAIT_SECONDS", 1.0)
    with support.cloned(support.golden(make_database)) as database:
        definition = database.scalar("select pg_get_viewdef('kpi_red_interface.backlog_due')")
        # what a build does between replacing a view and re-creating those built on it
        # (its `drop ... cascade` takes the views built on it along)
        database.execute("drop view kpi_red_interface.backlog_due cascade")
        result = CliRunner().invoke(main, ["match", "--json"], env=database.cli_env())
        assert result.exit_code == 1
        assert result.output.strip() == (
            'Error: relation "kpi_red_interface.backlog_due" does not exist: a dbt build is'
            " re-creating it (still missing after 1 s); retry when the build has finished"
        )

        def recreate() -> None:
            time.sleep(0.5)
            database.execute(f"create view kpi_red_interface.backlog_due as {definition}")

        monkeypatch.setattr(store_base, "REBUILD_WAIT_SECONDS", 30.0)
        thread = threading.Thread(target=recreate)
        thread.start()
        result = CliRunner().invoke(main, ["match", "--json"], env=database.cli_env())
        thread.join()
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["claimed"] == 1000
