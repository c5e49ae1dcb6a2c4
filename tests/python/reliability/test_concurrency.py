"""Four `kpi-red match` processes on the same queue at once.

Every eligible lead is attempted exactly once, no link or origin row is written twice,
the processes' JSON totals add up to the rows in the tables, and the result is the one an
uninterrupted single run gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import reliability_support as support
from conftest import Database

pytestmark = pytest.mark.reliability

PROCESSES = 4


def test_four_matchers_at_once_attempt_every_lead_exactly_once(
    make_database: Callable[..., Database],
) -> None:
    reference = support.reference_state(make_database)
    with support.cloned(support.golden(make_database)) as database:
        eligible = support.eligible_leads(database)
        origins_before = database.scalar("select count(*) from canon.identity_origin")
        links_before = database.scalar("select count(*) from canon.identity_links")

        # a short pause per batch keeps all four inside the queue at the same time
        processes = [support.start_match(database, pause=0.05) for _ in range(PROCESSES)]
        finished = [process.communicate(timeout=120) for process in processes]

        for process, (_, stderr) in zip(processes, finished, strict=True):
            assert process.returncode == 0, stderr
            assert "Traceback" not in stderr
        summaries = [json.loads(stdout) for stdout, _ in finished]
        total = {
            key: sum(summary[key] for summary in summaries)
            for key in (
                "claimed",
                "matched",
                "failed",
                "links_written",
                "origins_written",
                "skipped_locked",
                "skipped_changed",
            )
        }
        print(
            "\nconcurrency: claimed per process",
            [summary["claimed"] for summary in summaries],
            "skipped (locked, changed)",
            (total["skipped_locked"], total["skipped_changed"]),
        )

        # every eligible lead attempted exactly once, by one of the four
        assert set(support.attempts_per_lead(database)) == eligible
        assert set(support.attempts_per_lead(database).values()) == {1}
        assert support.integrity_problems(database) == {}
        assert not support.eligible_leads(database)  # failed ones wait for their retry

        # the JSON totals are the rows written
        attempts = database.scalar("select count(*) from kpi_red.match_attempts")
        kpi_links = database.scalar(
            "select count(*) from canon.identity_links where linked_by = 'kpi-red'"
        )
        origins_after = database.scalar("select count(*) from canon.identity_origin")
        links_after = database.scalar("select count(*) from canon.identity_links")
        assert total["claimed"] == attempts == len(eligible)
        assert total["matched"] + total["failed"] == total["claimed"]
        assert total["links_written"] == total["matched"] == kpi_links == links_after - links_before
        assert total["origins_written"] == origins_after - origins_before

        # the same links and outcomes as one uninterrupted run
        state = support.matcher_state(database)
        assert state.links == reference.links
        assert state.outcomes == reference.outcomes
