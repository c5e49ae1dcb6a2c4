"""Every step run twice changes nothing the second time, and a
``dbt build --full-refresh`` rebuilds exactly what the incremental builds made.

One clone of the demo database goes through the whole schedule; each step runs twice and
the second run must leave every row of every table and view in place (md5 of each
relation's rows, sorted, over every non-system schema: the sources, the matcher's three
tables, dbt's staging, intermediate and ops relations, the demo's own bookkeeping).
Nothing is excluded: the one clock-dependent thing, ``as_of`` = now(), moves the
backlog's ``age_days`` at midnight and a failed lead's ``is_eligible`` at its retry time
(an hour later), neither of which a test of a few seconds crosses.

dbt's data tests are skipped here (``DBT_EXCLUDE_RESOURCE_TYPES``) to keep the suite fast:
they write no rows, and test_dbt_models.py runs them.
"""

from __future__ import annotations

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

NO_DATA_TESTS = {"DBT_EXCLUDE_RESOURCE_TYPES": "test unit_test"}
SECRET = "Idem-Sup3rS3cret"
"""In the cycle's DSN: the server trusts its socket, and the password must not leak."""
DBT_RELATIONS = ["kpi_red_staging", "kpi_red_interface", "kpi_red_intermediate", "ops"]


@pytest.fixture
def schedule_env(
    make_database: Callable[..., Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Database, dict[str, str]]:
    for name, value in NO_DATA_TESTS.items():
        monkeypatch.setenv(name, value)
    return support.golden(make_database), {
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        **NO_DATA_TESTS,
    }


def kpi_red(database: Database, env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(main, list(args), env={**database.cli_env(), **env})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_step_twice_changes_nothing_the_second_time_and_rebuilds_agree(
    schedule_env: tuple[Database, dict[str, str]], tmp_path: Path
) -> None:
    golden, env = schedule_env
    with support.cloned(golden, tmp_path / "clone") as database:
        cycle_env = {
            **env,
            "KPI_RED_DSN": f"{database.conninfo} password={SECRET}",
        }
        outputs: list[str] = []

        def twice(step: str, run: Callable[[], object]) -> None:
            clock = time.perf_counter()
            run()
            before = support.checksums(database)
            outputs.append(str(run()))
            after = support.checksums(database)
            assert support.changed(before, after) == [], f"a second `{step}` changed rows"
            print(
                f"\nidempotence: {step} twice, {len(after)} relations unchanged"
                f" ({time.perf_counter() - clock:.1f} s)"
            )

        def rebuild_agrees(point: str) -> None:
            incremental = support.checksums(database, DBT_RELATIONS)
            database.dbt("build", "--full-refresh")
            rebuilt = support.checksums(database, DBT_RELATIONS)
            assert support.changed(incremental, rebuilt) == [], f"full refresh {point}"
            print(f"\nrebuild: {len(rebuilt)} dbt relations equal after --full-refresh {point}")

        twice("kpi-red demo", lambda: kpi_red(database, env, "demo"))
        twice("dbt build", lambda: database.dbt("build"))
        twice("kpi-red match", lambda: kpi_red(database, env, "match", "--limit", "0", "--json"))
        assert json.loads(outputs[-1])["claimed"] == 0
        twice("kpi-red repair-origin", lambda: kpi_red(database, env, "repair-origin"))
        assert outputs[-1] == "added 0 origin rows\n"
        twice("kpi-red cycle", lambda: kpi_red(database, cycle_env, "cycle", "--json"))
        assert json.loads(outputs[-1])["match"]["claimed"] == 0
        rebuild_agrees("after matches, origin repairs and cycles")

        # the queue and the metrics saw the matcher's work: the comparison was not empty
        assert database.scalar(
            "select count(*) from ops.cabinet_kpi_red_recovery_queue where status = 'matched'"
        )
        # and the cycle's password reached no output, log or artifact
        assert not [text for text in outputs if SECRET in text]
        leaked = [
            path
            for path in tmp_path.rglob("*")
            if path.is_file() and SECRET.encode() in path.read_bytes()
        ]
        assert leaked == []
