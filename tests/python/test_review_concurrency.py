"""A review beside a running matcher: an import touching leads a matcher batch holds
waits for that batch to commit (the same per-lead advisory locks), then sees what it
wrote: never two links for a lead, never a link over the matcher's, and every lead the
matcher did not link gets the reviewer's decision."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import reliability_support as support
from click.testing import CliRunner
from conftest import Database

from matcher.cli import main

pytestmark = pytest.mark.reliability

PAUSE = 2.0


def test_an_import_waits_for_the_batch_holding_its_leads(
    make_database: Callable[..., Database], tmp_path: Path
) -> None:
    with support.cloned(support.golden(make_database)) as database:
        truth = dict(database.query("select lead_id, person_key from kpi_red_demo.lead_truth"))
        hashes = dict(
            database.query(
                "select lead_source_pk, identifiers_hash from ops.v_cabinet_kpi_red_backlog"
            )
        )
        # a few batches: the import needs one held batch; the rest of a whole drain would
        # only pause (2 s a batch)
        matcher = support.start_kpi_red(
            database,
            "match",
            "--limit",
            str(6 * support.BATCH_SIZE),
            "--batch-size",
            str(support.BATCH_SIZE),
            "--json",
            pause=PAUSE,
        )
        try:
            held = sorted(support.wait_mid_batch(database, matcher, fresh=True)[0])
            chosen = [lead for lead in held if truth.get(lead)][:20]
            path = tmp_path / "decisions.csv"
            with path.open("w", encoding="utf-8", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(["lead_source_pk", "person_key", "identifiers_hash", "decision"])
                for lead in chosen:
                    writer.writerow([lead, truth[lead], hashes[lead], "link"])
            clock = time.monotonic()
            result = CliRunner().invoke(
                main, ["review", "import", str(path), "--json"], env=database.cli_env()
            )
            waited = time.monotonic() - clock
        finally:
            stdout, stderr = matcher.communicate(timeout=300)
        assert matcher.returncode == 0, stderr
        report = json.loads(result.output)
        # the import began while the batch held its leads (paused before its commit)
        assert waited < PAUSE * 10
        links = database.query(
            "select source_pk, person_key, linked_by from canon.identity_links"
            " where source_pk = any(%s)",
            (chosen,),
        )
        assert len(links) == len({lead for lead, _, _ in links}) == len(chosen)
        by_matcher = {lead for lead, _, linked_by in links if linked_by == "kpi-red"}
        by_review = {lead for lead, _, linked_by in links if linked_by == "kpi-red review"}
        assert by_matcher | by_review == set(chosen)
        assert report["linked"] == len(by_review)
        # a lead the matcher linked is reported, never relinked
        refused = {row["why"].split(":")[0].removeprefix("lead ") for row in report["refused_rows"]}
        assert refused == by_matcher
        # it read them after the batch committed (under the lock), not while it was open:
        # each was "already linked" when checked, none lost a race at the insert
        assert by_matcher
        assert all("already linked" in row["why"] for row in report["refused_rows"])
        assert all(person == truth[lead] for lead, person, _ in links)
        assert json.loads(stdout)["claimed"] > 0
