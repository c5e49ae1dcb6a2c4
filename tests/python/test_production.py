"""Production: upstream tables owned by another role, the data contract and nothing more,
and three project roles, each command run as the role the README says. On the embedded
server and on the oldest supported PostgreSQL from Debian's package (a fresh cluster on a
loopback port, password authentication): a difference between versions shows here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from production_support import Site, site

pytestmark = pytest.mark.production

API = "/api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics"
PROJECT_SCHEMAS = ("kpi_red", "kpi_red_staging", "kpi_red_intermediate", "ops")


@pytest.fixture(scope="session", params=["embedded", "debian"])
def server(request: pytest.FixtureRequest, socket_dir: Path) -> Iterator[servers.Server]:
    if request.param == "embedded":
        yield servers.embedded(socket_dir)
        return
    bin_dir = servers.debian_bin_dir()
    if bin_dir is None:
        reason = (
            f"no PostgreSQL >= {servers.OLDEST_SUPPORTED} server binaries under"
            f" {servers.DEBIAN_BINARIES}/<version>/bin: install Debian's postgresql package"
            " (`make test` does)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with servers.debian_server(bin_dir) as started:
        yield started


@pytest.fixture
def prod(server: servers.Server, tmp_path: Path) -> Iterator[Site]:
    """Upstream tables (demo data) owned by their role, the roles, the upstream grants."""
    with site(server, tmp_path) as created:
        created.setup_upstream()
        yield created


def kpi_red_links(prod: Site) -> int:
    return int(
        prod.scalar(
            "select count(*) from canon.identity_links where linked_by = %s",
            (prod.vars.get("matcher_linked_by", "kpi-red"),),
        )
    )


def test_every_command_runs_as_its_role(prod: Site) -> None:
    indexes_before = prod.query("select indexname from pg_indexes where schemaname = 'canon'")

    # the dbt role: init creates only what the project owns, owned by it
    initialized = prod.kpi_red("dbt", "init")
    assert initialized.code == 0, initialized.output + initialized.stderr
    assert "kpi_red.match_attempts" in initialized.output
    assert set(prod.owners("kpi_red").values()) == {prod.roles["dbt"]}
    assert prod.query("select indexname from pg_indexes where schemaname = 'canon'") == (
        indexes_before
    )
    printed = prod.kpi_red("dbt", "grants", "--for", "project")
    prod.run_sql("dbt", printed.output)
    prod.run_sql("dbt", printed.output)  # again: nothing changes, nothing complains
    prod.dbt("dbt", "build")

    doctor = prod.kpi_red("dbt", "doctor")
    assert doctor.code == 0, doctor.output
    assert doctor.output.splitlines()[-1].startswith("all well")
    assert "no index on (lead_id)" in doctor.output  # a recommendation, not a failure

    # the matcher role matches and writes every column itself
    matched = prod.kpi_red("matcher", "match", "--limit", "0", "--json")
    assert matched.code == 0, matched.output + matched.stderr
    summary = matched.json
    assert summary["links_written"] > 0
    assert kpi_red_links(prod) == summary["links_written"]
    assert prod.scalar("select count(*) from canon.identity_links where linked_at is null") == 0
    assert prod.scalar("select count(*) from canon.identity_origin where recorded_at is null") == 0
    prod.run_sql("upstream", "delete from canon.identity_origin where origin_tag = 'cabinet_lead'")
    repaired = prod.kpi_red("matcher", "repair-origin", "--json")
    assert repaired.code == 0 and repaired.json["origins_added"] > 0, repaired.output
    assert prod.scalar("select count(*) from canon.identity_origin where recorded_at is null") == 0
    for statement in (
        "delete from canon.identity_links",
        "update canon.identity_links set person_key = 'x'",
        "delete from kpi_red.match_attempts",
        "select * from canon.identity_registry",
        "create table kpi_red.extra (id integer)",
    ):
        assert prod.denied("matcher", statement), statement

    # dbt folds the attempts: every kpi-red link counted as the matcher's, exactly
    prod.dbt("dbt", "build")
    assert prod.scalar(
        "select sum(matched_out) from ops.v_cabinet_kpi_red_recovery_metrics_daily"
    ) == kpi_red_links(prod)
    assert prod.scalar(
        "select count(*) from ops.cabinet_kpi_red_recovery_queue where status = 'matched'"
    ) == kpi_red_links(prod)

    # the reader: the panel, labelled in the zone dbt used, from any directory
    backlog = prod.scalar("select count(*) from ops.v_cabinet_kpi_red_backlog")
    metrics = prod.kpi_red("reader", "metrics", "--json")
    assert metrics.code == 0, metrics.output + metrics.stderr
    assert metrics.json["current_backlog"] == backlog
    elsewhere = prod.kpi_red("reader", "metrics", project_dir=prod.home)
    assert elsewhere.code == 0, elsewhere.output + elsewhere.stderr
    assert "(America/Lima)" in elsewhere.output.splitlines()[0]
    assert prod.denied("reader", "insert into kpi_red.match_attempts (run_id) values ('r')")
    assert serve_as(prod, "reader")["current_backlog"] == backlog

    # the scheduled cycle, as the dbt role (a member of the matcher role)
    cycled = prod.kpi_red("dbt", "cycle", "--json")
    assert cycled.code == 0, cycled.output + cycled.stderr
    assert [step["step"] for step in cycled.json["steps"]] == [
        "init", "dbt build", "match", "dbt build",
    ]  # fmt: skip

    # a rebuild from scratch by the dbt role, then by a member of it and by a superuser:
    # everything still belongs to the dbt role, and the matcher and reader keep access
    for key in ("dbt", "analyst", "admin"):
        prod.dbt(key, "build", "--full-refresh")
        owners = prod.owners(*PROJECT_SCHEMAS)
        assert set(owners.values()) == {prod.roles["dbt"]}, (key, owners)
        assert prod.kpi_red("matcher", "match", "--limit", "10").code == 0
        reread = prod.kpi_red("reader", "metrics", "--json")
        assert reread.code == 0, (key, reread.output + reread.stderr)
    assert prod.kpi_red("dbt", "doctor").code == 0


def serve_as(prod: Site, key: str) -> dict[str, object]:
    """`kpi-red serve` as a role, in its own process; one API read."""
    port = servers._free_port()
    argv = [
        str(Path(sys.executable).with_name("kpi-red")),
        "serve",
        "--port",
        str(port),
        "--profiles-dir",
        str(prod.home),
        "--target",
        key,
        "--project-dir",
        str(prod.project_dir),
    ]
    env = {**os.environ, "DBT_ENV_SECRET_PGPASSWORD": servers.PASSWORD}
    env.pop("KPI_RED_DSN", None)
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{API}", timeout=5) as reply:
                    return json.loads(reply.read())  # type: ignore[no-any-return]
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
