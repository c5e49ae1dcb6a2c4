"""A matcher killed with SIGKILL in the middle of a batch, again and again.

Each time the matcher is killed inside a batch transaction (after its writes, before its
commit: ``paused_matcher.py`` holds it there, the kill comes
after a random delay), and each time: none of that batch is visible, its leads are
eligible and lockable at once (the advisory locks went with the connection), the earlier
batches are whole. A final run finishes the job with the state of an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable

import pytest
import reliability_support as support
from conftest import Database

pytestmark = pytest.mark.reliability

KILLS = 5
PAUSE_SECONDS = 0.6


def new_attempts(database: Database, runs_before: set[str]) -> int:
    return int(
        database.scalar(
            "select count(*) from kpi_red.match_attempts where run_id <> all(%s)",
            (list(runs_before),),
        )
    )


def test_sigkill_mid_batch_loses_nothing_and_a_rerun_finishes_the_job(
    make_database: Callable[..., Database],
) -> None:
    reference = support.reference_state(make_database)
    chance = random.Random()  # a different schedule of kills on every run
    with support.cloned(support.golden(make_database)) as database:
        eligible = support.eligible_leads(database)
        killed_runs: set[str] = set()
        mid_batch = 0
        for kill in range(KILLS):
            runs_before = {
                row[0]
                for row in database.query("select distinct run_id from kpi_red.match_attempts")
            }
            process = support.start_match(database, pause=PAUSE_SECONDS)
            # a random point: after 0 to 3 committed batches (the first kill: 1 to 3), at a
            # random time in the pause
            committed = chance.randint(0 if kill else 1, 3) * support.BATCH_SIZE
            support.wait_until(
                lambda runs=runs_before, at_least=committed: (
                    new_attempts(database, runs) >= at_least
                ),
                timeout=60,
            )
            batches = support.wait_mid_batch(database, process, fresh=True)
            held = set().union(*batches)
            time.sleep(chance.uniform(0, PAUSE_SECONDS / 3))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            assert process.returncode == -signal.SIGKILL

            # the killed connection's backend ends at once, and its locks with it
            support.wait_until(lambda: support.matcher_backends(database) == 0, timeout=5)
            assert support.lockable(database, held), f"kill {kill}: locks survived"
            # no part of a killed batch is visible; its leads are eligible again (all of
            # a batch, had the kill come after its commit: a miss of the test's timing,
            # e.g. the other writer's batch, paused earlier, committing first)
            attempted = held & set(support.attempts_per_lead(database))
            for batch in batches:
                assert batch & attempted in (set(), batch), f"kill {kill}: a partial batch"
            killed = [batch for batch in batches if not batch & attempted]
            if killed:
                mid_batch += 1
                assert set().union(*killed) <= support.eligible_leads(database)
            assert support.integrity_problems(database) == {}
            # every committed batch is whole: a killed run wrote whole batches only
            for run_id, count in database.query(
                "select run_id, count(*) from kpi_red.match_attempts group by run_id"
            ):
                if run_id not in runs_before:
                    killed_runs.add(run_id)
                    assert count % support.BATCH_SIZE == 0, (run_id, count)

        assert mid_batch >= KILLS - 1, f"only {mid_batch} of {KILLS} kills landed mid-batch"
        assert killed_runs, "no killed run committed a batch before its kill"
        done_before_rerun = len(support.attempts_per_lead(database))
        assert 0 < done_before_rerun < len(eligible)

        rerun = support.run_kpi_red(database, *support.MATCH_ARGS)
        assert rerun.returncode == 0, rerun.stderr
        assert json.loads(rerun.stdout)["claimed"] == len(eligible) - done_before_rerun
        print(
            f"\ncrash: {KILLS} kills survived ({mid_batch} mid-batch),"
            f" {len(killed_runs)} killed runs had committed"
            f" batches, {done_before_rerun} of {len(eligible)} leads done before the rerun"
        )

        # nothing lost, nothing doubled, and the same result as an uninterrupted run
        attempts = support.attempts_per_lead(database)
        assert set(attempts) == eligible and set(attempts.values()) == {1}
        assert support.integrity_problems(database) == {}
        state = support.matcher_state(database)
        assert state.links == reference.links
        assert state.outcomes == reference.outcomes
