"""The reviewer role: exactly what `kpi-red grants` prints for it lets it review and
unlink, and nothing else (no matching, no writes to what upstream or dbt own)."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import reliability_support as support
from conftest import Database
from test_privilege import as_role, denied, kpi_red, login_roles

pytestmark = pytest.mark.reliability


@pytest.fixture
def reviewer(make_database: Callable[..., Database]) -> Iterator[tuple[Database, str]]:
    """A clone of the demo after a match, with a new reviewer role granted what the
    grants print (the superuser stands for the other owners)."""
    suffix = uuid.uuid4().hex[:8]
    role = f"kpi_red_reviewer_{suffix}"
    others = [f"kpi_red_matcher_{suffix}", f"kpi_red_reader_{suffix}"]
    with support.cloned(support.golden(make_database)) as database:
        code, output = kpi_red(database.conninfo, "match", "--limit", "0", "--json")
        assert code == 0, output
        database.dbt("run")
        with login_roles(database, (role, *others)):
            code, grants = kpi_red(
                database.conninfo,
                "grants",
                "--for",
                "all",
                "--dbt-role",
                "postgres",
                "--matcher-role",
                others[0],
                "--reader-role",
                others[1],
                "--vars",
                json.dumps({"reviewer_role": role}),
            )
            assert code == 0, grants
            assert f'"{role}"' in grants
            with database.connect(autocommit=True) as conn:
                conn.execute(grants)  # type: ignore[arg-type]
            yield database, role


def test_the_reviewer_reviews_and_unlinks_and_does_nothing_else(
    reviewer: tuple[Database, str], tmp_path: Path
) -> None:
    database, role = reviewer
    as_reviewer = as_role(database, role)
    code, output = kpi_red(as_reviewer, "review", "export", str(tmp_path / "queue.csv"))
    assert code == 0, output
    rows = list(csv.DictReader((tmp_path / "queue.csv").open(encoding="utf-8")))
    truth = dict(database.query("select lead_id, person_key from kpi_red_demo.lead_truth"))
    first = rows[0]
    first["decision"] = (
        "link" if truth[first["lead_source_pk"]] == first["person_key"] else "reject"
    )
    with (tmp_path / "one.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(first))
        writer.writeheader()
        writer.writerow(first)
    code, output = kpi_red(as_reviewer, "review", "import", str(tmp_path / "one.csv"))
    assert code == 0, output
    lead = database.scalar(
        "select source_pk from canon.identity_links where linked_by = 'kpi-red' order by 1 limit 1"
    )
    code, output = kpi_red(as_reviewer, "unlink", lead, "--reason", "wrong person")
    assert code == 0, output
    code, output = kpi_red(as_reviewer, "explain", lead)
    assert code == 0, output
    assert database.scalar("select db_user from kpi_red.link_removals") == role

    assert denied(as_reviewer, "update cabinet.leads set full_name = 'X'")
    assert denied(as_reviewer, "delete from canon.identity_origin")
    assert denied(as_reviewer, "delete from kpi_red.review_decisions")  # append-only
    assert denied(as_reviewer, "update kpi_red.link_removals set reason = 'x'")
    assert denied(as_reviewer, "insert into kpi_red.match_attempts (run_id) values ('r')")
    assert denied(as_reviewer, "truncate ops.cabinet_kpi_red_recovery_queue")
    # matching is the matcher's: one line, exit 1
    code, output = kpi_red(as_reviewer, "match", "--limit", "10")
    assert code == 1
    assert output.startswith("Error: permission denied") and len(output.splitlines()) == 1
