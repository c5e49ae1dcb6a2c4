"""What is safe to run together (the table in docs/operations.md), one test per pair.

- two ``kpi-red match --limit N`` started together: each claims N leads;
- ``dbt build`` while a match runs: the build passes, and never waits long on a lock;
- ``kpi-red match`` started while ``dbt build`` re-creates the views: it waits, then runs;
- ``dbt build --full-refresh`` while a match runs: both finish;
- a hand-run ``kpi-red match`` next to the scheduled ``kpi-red cycle``: both succeed, every
  lead is attempted once;
- ``kpi-red metrics`` (``--live`` too) while ``dbt build`` runs: every read succeeds;
- reads of the metrics table while dbt refreshes it (a BI tool: no retry): none fails;
- a build of views that did not change while a BI query holds them: it never waits.

(Two ``kpi-red cycle``s: the second exits 75, ``test_cycle.py``. Four matchers at once:
``test_concurrency.py``.) The matchers run as processes, paused after each
batch's writes (the reliability tests' hook) so that they overlap the other side; dbt
runs in this process.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import reliability_support as support
from click.testing import CliRunner
from conftest import Database
from psycopg import sql

from matcher.cli import main
from matcher.store.base import DatabaseError
from matcher.store.panel import read_panel_rows

pytestmark = pytest.mark.reliability

BUILD = ("build", "--exclude-resource-type", "unit_test")
LONGEST_LOCK_WAIT_S = 2.0
"""A build next to a match may wait this long for one lock, at most: one of the matcher's
statements or batch transactions (its pause included), never a run."""


@dataclass
class LockWatch:
    """Samples the database every 20 ms: the longest lock wait of any ``dbt`` backend,
    and whether ``alive()`` held in some sample."""

    database: Database
    alive: Callable[[], bool] = lambda: True
    longest: float = 0.0
    overlapped: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        waiting_since: dict[int, float] = {}
        with self.database.connect(autocommit=True, application_name="kpi-red-test") as conn:
            while not self._stop.is_set():
                now = time.monotonic()
                waiting = {
                    row[0]
                    for row in conn.execute(
                        "select pid from pg_stat_activity where datname = current_database()"
                        " and application_name = 'dbt' and wait_event_type = 'Lock'"
                    )
                }
                waiting_since = {pid: waiting_since.get(pid, now) for pid in waiting}
                for started in waiting_since.values():
                    self.longest = max(self.longest, now - started)
                self.overlapped = self.overlapped or self.alive()
                time.sleep(0.02)

    @contextmanager
    def running(self) -> Iterator[LockWatch]:
        thread = threading.Thread(target=self.sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


@contextmanager
def repeatedly(start: Callable[[], subprocess.Popen[str]]) -> Iterator[list[tuple[int, str]]]:
    """Start a process, wait for it, start the next, until the block ends; yields the
    (exit code, stderr) of each."""
    finished: list[tuple[int, str]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            process = start()
            _, stderr = process.communicate(timeout=300)
            finished.append((process.returncode, stderr))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield finished
    finally:
        stop.set()
        thread.join()


def match(database: Database, *args: str, pause: float | None = None) -> subprocess.Popen[str]:
    return support.start_kpi_red(
        database, "match", "--batch-size", str(support.BATCH_SIZE), "--json", *args, pause=pause
    )


def wait_mid_run(database: Database, process: subprocess.Popen[str]) -> None:
    """Until the matcher has committed its first batch."""
    support.wait_until(
        lambda: (
            bool(database.scalar("select count(*) from kpi_red.match_attempts"))
            or process.poll() is not None
        ),
        timeout=60,
    )
    assert process.poll() is None, process.communicate()


def test_two_limited_matchers_started_together_each_claim_their_limit(
    make_database: Callable[..., Database],
) -> None:
    golden = support.golden(make_database)
    for attempt in range(5):
        with support.cloned(golden) as database:
            processes = [match(database, "--limit", "300", pause=0.05) for _ in range(2)]
            finished = [process.communicate(timeout=120) for process in processes]
            for process, (_, stderr) in zip(processes, finished, strict=True):
                assert process.returncode == 0, stderr
            claimed = [json.loads(stdout)["claimed"] for stdout, _ in finished]
            assert claimed == [300, 300], f"try {attempt}: {claimed}"
            attempts = support.attempts_per_lead(database)
            assert len(attempts) == 600 and set(attempts.values()) == {1}
            assert support.integrity_problems(database) == {}


@pytest.mark.parametrize(
    "build", [BUILD, ("build", "--full-refresh", "--exclude-resource-type", "unit_test")]
)
def test_a_build_next_to_a_running_match_passes(
    make_database: Callable[..., Database], build: tuple[str, ...]
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        matcher = match(database, "--limit", "0", pause=0.4)
        wait_mid_run(database, matcher)
        watch = LockWatch(database, alive=lambda: matcher.poll() is None)
        with watch.running():
            database.dbt(*build)  # raises if a model or an error-level test fails
        stdout, stderr = matcher.communicate(timeout=300)
        assert matcher.returncode == 0, stderr
        assert watch.overlapped, "the matcher ended before the build began"
        # waits for a statement of the matcher at most, never for its run
        assert watch.longest < LONGEST_LOCK_WAIT_S, watch.longest
        summary = json.loads(stdout)
        assert summary["claimed"] == len(support.attempts_per_lead(database))
        assert support.integrity_problems(database) == {}
        print(f"\n{' '.join(build)} next to a match: longest lock wait {watch.longest:.2f} s")


def test_a_match_started_while_dbt_rebuilds_the_views_runs(
    make_database: Callable[..., Database],
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        with repeatedly(lambda: match(database, "--limit", "50")) as finished:
            time.sleep(0.5)
            database.dbt(*BUILD)
        assert len(finished) >= 3, "too few matches ran during the build"
        # the failures' stderr whole (pytest would cut a list of them short)
        assert not [stderr for code, stderr in finished if code], "\n".join(
            stderr for code, stderr in finished if code
        )
        assert support.integrity_problems(database) == {}
        print(f"\n{len(finished)} matches started during one build, all exit 0")


def test_a_build_of_unchanged_views_never_waits_for_a_reader(
    make_database: Callable[..., Database],
) -> None:
    """A BI query holds its views (and every view they inline) until it ends. `create or
    replace view` waits for it, and every read begun after waits behind that: one long
    dashboard query stalled the hourly build and every reader of the backlog. A view whose
    definition did not change is left as it is."""
    with support.cloned(support.golden(make_database)) as database:
        views = ("--select", "config.materialized:view_in_place")
        database.dbt("run", *views)  # the views as this code defines them
        built = threading.Event()
        with database.connect() as reader:  # a transaction left open, as a long query
            reader.execute("select count(*) from ops.v_cabinet_kpi_red_backlog")
            locked = database.scalar(
                "select count(*) from pg_locks where mode = 'AccessShareLock'"
                " and relation = 'kpi_red_staging.stg_cabinet__leads'::regclass"
            )
            assert locked == 1
            worker = threading.Thread(
                target=lambda: database.dbt("run", *views) and built.set(), daemon=True
            )
            worker.start()
            finished_first = built.wait(timeout=60)
            reader.rollback()  # the reader ends: a blocked build finishes now
        worker.join(timeout=60)
        assert finished_first, "the build of unchanged views waited for the reader"
        # a view whose definition differs from its model's (an older release's) is replaced
        view = "'kpi_red_staging.stg_claims__lead_claims'::regclass"
        current = database.scalar(f"select pg_get_viewdef({view})")
        older = sql.SQL(
            "create or replace view kpi_red_staging.stg_claims__lead_claims as"
            " select * from ({}) as older where true"
        ).format(sql.SQL(current.rstrip().rstrip(";")))
        database.execute(older)
        assert database.scalar(f"select pg_get_viewdef({view})") != current
        database.dbt("run", *views)
        assert database.scalar(f"select pg_get_viewdef({view})") == current


def test_a_hand_run_match_next_to_the_scheduled_cycle(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        eligible = support.eligible_leads(database)
        hand = match(database, "--limit", "0", pause=0.3)
        wait_mid_run(database, hand)
        env = {
            **database.cli_env(),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
        }
        cycle = CliRunner().invoke(main, ["cycle", "--json"], env=env)
        stdout, stderr = hand.communicate(timeout=300)
        assert cycle.exit_code == 0, cycle.output
        assert hand.returncode == 0, stderr
        claimed = json.loads(stdout)["claimed"] + json.loads(cycle.output)["match"]["claimed"]
        attempts = support.attempts_per_lead(database)
        assert set(attempts) == eligible and set(attempts.values()) == {1}
        assert claimed == len(eligible)
        assert support.integrity_problems(database) == {}


def test_the_panel_reads_while_dbt_builds(make_database: Callable[..., Database]) -> None:
    with support.cloned(support.golden(make_database)) as database:
        database.dbt(*BUILD)  # the metrics exist

        def read() -> subprocess.Popen[str]:
            return support.start_kpi_red(database, "metrics", "--json", "--live")

        with repeatedly(read) as finished:
            time.sleep(0.5)
            database.dbt(*BUILD)
        assert len(finished) >= 3
        # the failures' stderr whole (pytest would cut a list of them short)
        assert not [stderr for code, stderr in finished if code], "\n".join(
            stderr for code, stderr in finished if code
        )


def test_the_metrics_table_is_never_missing_while_a_build_refreshes_it(
    make_database: Callable[..., Database],
) -> None:
    """BI tools read the metrics table with no retry. dbt-postgres's `table` renamed a new
    table in; reads that began meanwhile failed with "relation does not exist" now and
    then (about 1 in 50 during builds, one every build of the model here). Refreshed in
    place (`table_in_place`), the table is never renamed: each read sees the old rows or
    the new ones."""
    with support.cloned(support.golden(make_database)) as database:
        database.dbt(*BUILD)
        reads: list[str | None] = []
        stop = threading.Event()

        def bi_tool() -> None:  # a plain read, as a BI tool makes it
            with database.connect(autocommit=True) as conn:
                conn.execute("select count(*) from ops.v_cabinet_kpi_red_recovery_metrics_daily")

        def panel() -> None:  # `kpi-red metrics --json`
            read_panel_rows(database.conninfo, days=30)

        def read(once: Callable[[], None]) -> None:
            while not stop.is_set():
                try:
                    once()
                    reads.append(None)
                except (psycopg.Error, DatabaseError) as exc:
                    reads.append(f"{once.__name__}: {exc}")

        threads = [
            threading.Thread(target=read, args=(once,), daemon=True)
            for once in (bi_tool, bi_tool, panel)
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(3):
                database.dbt("run", "--select", "v_cabinet_kpi_red_recovery_metrics_daily")
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        failures = [failure for failure in reads if failure]
        assert len(reads) > 100, len(reads)
        assert not failures, f"{len(failures)} of {len(reads)} reads failed: {failures[0]}"
