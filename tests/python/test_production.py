"""Production: upstream tables owned by another role, the data contract and nothing more,
and three project roles, each command run as the role docs/production.md says.

On one server by default: the oldest supported PostgreSQL from Debian's package (a fresh
cluster on a loopback port, password authentication: what the embedded server, which
trusts its socket, cannot check), or the embedded server when that package is missing
(outside CI). ``KPI_RED_PRODUCTION_SERVERS=embedded,debian`` runs the suite on both: a
difference between versions shows there.
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
from conftest import PROJECT_DIR
from production_support import Site, site
from psycopg import sql

from matcher.dbt import DbtError

pytestmark = pytest.mark.production

API = "/api/v1/ops/payments/cabinet-financial-14d/kpi-red-recovery-metrics"
PROJECT_SCHEMAS = ("kpi_red", "kpi_red_staging", "kpi_red_interface", "kpi_red_intermediate", "ops")


def production_servers() -> list[str]:
    """``KPI_RED_PRODUCTION_SERVERS`` (comma-separated), else Debian's PostgreSQL when it
    is installed (always in CI), else the embedded server."""
    chosen = os.environ.get("KPI_RED_PRODUCTION_SERVERS", "")
    if chosen.strip():
        return [name.strip() for name in chosen.split(",") if name.strip()]
    return ["debian"] if servers.debian_bin_dir() or os.environ.get("CI") else ["embedded"]


@pytest.fixture(scope="session", params=production_servers())
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
        "update canon.identity_registry set full_name = 'x'",
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
        "init", "dbt build", "match", "repair origin", "dbt build",
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


HOST_PROJECT = """
name: analytics_host
version: "1.0.0"
config-version: 2
profile: analytics
model-paths: ["models"]
vars:
  metrics_lookback_days: 5
  kpi_red_recovery:
    attempts_schema: kpi_red_ops
    matcher_linked_by: "host's matcher"
    metrics_time_zone: America/Bogota
    dbt_role: {dbt}
    matcher_role: {matcher}
    reader_role: {reader}
"""


def host_project(prod: Site, directory: Path) -> Path:
    """A tiny analytics project that installs this one as a local package."""
    from dbt.cli.main import dbtRunner

    from matcher.project import PACKAGE_NAME

    (directory / "models").mkdir(parents=True)
    (directory / "dbt_project.yml").write_text(
        HOST_PROJECT.format(
            dbt=json.dumps(prod.roles["dbt"]),
            matcher=json.dumps(prod.roles["matcher"]),
            reader=json.dumps(prod.roles["reader"]),
        )
    )
    (directory / "packages.yml").write_text(
        f"packages:\n  - local: {json.dumps(str(PROJECT_DIR))}\n"
    )
    # a host model on this package's mart (not built by `kpi-red cycle`)
    model = "select metric_date, backlog_end from {{ ref('%s', '%s') }}\n"
    (directory / "models" / "host_summary.sql").write_text(
        model % (PACKAGE_NAME, "v_cabinet_kpi_red_recovery_metrics_daily")
    )
    installed = dbtRunner().invoke(["--quiet", "deps", "--project-dir", str(directory)])
    assert installed.success, installed.exception
    return directory


def test_package_mode_from_a_host_project(prod: Site, tmp_path: Path) -> None:
    prod.project_dir = host_project(prod, tmp_path / "host")
    prod.profile_name = "analytics"  # the host's profile, not this project's
    prod.write_profiles()
    prod.vars = {}  # the host's package-scoped vars say everything

    assert prod.kpi_red("dbt", "init").code == 0
    printed = prod.kpi_red("dbt", "grants", "--for", "project")
    assert '"kpi_red_ops"."match_attempts"' in printed.output
    prod.run_sql("dbt", printed.output)
    # --vars reach dbt as well: the CLI's wins over the host's var
    cycled = prod.kpi_red("dbt", "cycle", "--json", extra_vars={"metrics_time_zone": "UTC"})
    assert cycled.code == 0, cycled.output + cycled.stderr
    written = cycled.json["match"]["links_written"]
    assert written > 0

    # only this package was built, into the same schemas; the attempts log is the host's
    assert prod.scalar("select to_regclass('analytics.host_summary')") is None
    assert prod.scalar("select to_regclass('kpi_red.match_attempts')") is None
    assert (
        prod.scalar("select count(*) from kpi_red_ops.match_attempts")
        == (cycled.json["match"]["claimed"])
    )
    assert (
        prod.scalar(
            "select count(*) from canon.identity_links where linked_by = %s", ("host's matcher",)
        )
        == written
    )
    assert (
        prod.scalar("select sum(matched_out) from ops.v_cabinet_kpi_red_recovery_metrics_daily")
        == written
    )
    assert (
        prod.scalar(
            "select setting_value #>> '{}' from ops.kpi_red_settings"
            " where setting_name = 'metrics_lookback_days'"
        )
        == "5"
    )  # the host's global var
    metrics = prod.kpi_red("reader", "metrics")
    assert "(UTC)" in metrics.output.splitlines()[0], metrics.output

    # a matcher with other settings than the build's writes nothing, and says why
    attempts = prod.scalar("select count(*) from kpi_red_ops.match_attempts")
    standalone = prod.kpi_red(
        "matcher",
        "match",
        "--limit",
        "0",
        project_dir=PROJECT_DIR,  # this project alone: its own vars, not the host's
        env={"KPI_RED_DSN": prod.conninfo("matcher")},
    )
    assert standalone.code == 1
    assert "kpi_red_ops" in standalone.stderr and "attempts log" in standalone.stderr
    assert len(standalone.stderr.strip().splitlines()) == 1
    other = prod.kpi_red("matcher", "match", extra_vars={"matcher_linked_by": "someone"})
    assert other.code == 1 and "matcher_linked_by" in other.stderr, other.stderr
    assert prod.scalar("select count(*) from kpi_red_ops.match_attempts") == attempts


def test_a_missing_source_table_is_named_and_nothing_links_without_it(prod: Site) -> None:
    prod.setup_project()
    backlog_view = prod.scalar("select 'ops.v_cabinet_kpi_red_backlog'::regclass::oid")
    attempts = prod.scalar("select count(*) from kpi_red.match_attempts")
    # the claims table disappears (its owner renamed it) before the next build
    prod.run_sql("upstream", "alter table claims.lead_claims rename to lead_claims_old")

    cycled = prod.kpi_red("dbt", "cycle", "--json")
    assert cycled.code == 1
    error = cycled.stderr.strip().splitlines()[-1]  # after dbt's own lines
    assert error.startswith("Error: dbt build failed: "), error
    assert "claims_lead_claims" in error and "does not exist" in error, error
    # every write re-checks the live claims: without them nothing is matched (a claimed lead
    # would be linked), and the cycle says which table is missing
    assert "cannot match: claims.lead_claims missing" in error, error
    report = cycled.json
    assert report["match"] is None
    assert any("claims" in failure for failure in report["dbt_failures"])
    # the views built on the rebuilt ones are still there, the same relations
    assert prod.scalar("select 'ops.v_cabinet_kpi_red_backlog'::regclass::oid") == backlog_view
    matched = prod.kpi_red("matcher", "match", "--limit", "5")
    assert matched.code == 1 and "lead_claims" in matched.stderr, matched.output
    assert prod.scalar("select count(*) from kpi_red.match_attempts") == attempts
    assert prod.kpi_red("reader", "metrics", "--json").code == 0

    prod.run_sql("upstream", "alter table claims.lead_claims_old rename to lead_claims")
    assert prod.kpi_red("dbt", "cycle").code == 0


ODD_VARS = {
    "leads_schema": 'Cabinet "Leads"',
    "leads_table": "leads'; drop table public.canary; --",
    "links_table": 'identity "links"',
    "origin_schema": "canon origin",
    "origin_table": "origin'); drop table public.canary; --",
    "claims_table": "lead claims",
    "attempts_schema": 'kpi "red" ops',
    "attempts_table": "match attempts",
    "lead_source_table": "cabinet_leads'; drop table public.canary; --",
    "matcher_linked_by": 'kpi-red\'s "bot"',
    "junk_emails": ["test@test.com", "o'brien@example.com"],
    "as_of": None,
}


def test_vars_with_quotes_and_odd_names_are_names_and_values_never_sql(
    server: servers.Server, tmp_path: Path
) -> None:
    with site(server, tmp_path) as odd:
        odd.vars = {**odd.vars, **ODD_VARS, "dbt_role": odd.roles["dbt"] + ' "x"'}
        servers.create_roles(server, odd.vars["dbt_role"])
        try:
            odd_flow(odd)
        finally:
            with server.connect(dbname="postgres") as conn:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(
                        sql.Identifier(odd.dbname)
                    )
                )
                conn.execute(
                    sql.SQL("drop role if exists {}").format(sql.Identifier(odd.vars["dbt_role"]))
                )


def odd_flow(odd: Site) -> None:
    with odd.server.connect(dbname="postgres") as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(odd.dbname)))
    odd.run_sql("admin", "create table public.canary (id integer)")
    loaded = odd.kpi_red("admin", "demo")  # the demo's DDL, with these names
    assert loaded.code == 0, loaded.output + loaded.stderr
    for part in ("database", "upstream"):
        odd.run_sql("admin", odd.kpi_red("admin", "grants", "--for", part).output)
    initialized = odd.kpi_red("admin", "init")  # as the (odd) dbt_role
    assert initialized.code == 0, initialized.stderr
    odd.run_sql("admin", odd.kpi_red("admin", "grants", "--for", "project").output)
    odd.dbt("admin", "build")
    matched = odd.kpi_red("matcher", "match", "--limit", "0", "--json")
    assert matched.code == 0, matched.output + matched.stderr
    written = matched.json["links_written"]
    assert written > 0
    odd.dbt("admin", "build")

    links = sql.Identifier("canon", ODD_VARS["links_table"])
    assert (
        odd.scalar(
            sql.SQL("select count(*) from {} where source_table = %s and linked_by = %s").format(
                links
            ),
            (ODD_VARS["lead_source_table"], ODD_VARS["matcher_linked_by"]),
        )
        == written
    )
    assert (
        odd.scalar("select sum(matched_out) from ops.v_cabinet_kpi_red_recovery_metrics_daily")
        == written
    )  # dbt recognizes the matcher's links by the same odd values
    assert odd.scalar("select count(*) from public.canary") == 0  # still there
    owners = set(odd.owners("ops", "kpi_red_interface", "kpi_red_intermediate").values())
    assert owners == {odd.vars["dbt_role"]}  # built as the odd dbt_role
    # a var that must be a number is refused by name, before any SQL runs
    with pytest.raises(DbtError, match="retry_base_minutes must be a whole number"):
        odd.dbt("admin", "build", extra_vars={"retry_base_minutes": "1; drop table public.canary"})
    assert odd.scalar("select count(*) from public.canary") == 0


CATALOG_STATE = """
select md5(string_agg(entry, ',' order by entry)) from (
    select c.oid::text || c.relname || c.relowner::text || coalesce(c.relacl::text, '')
        as entry
    from pg_class as c
    union all
    select n.nspname || n.nspowner::text || coalesce(n.nspacl::text, '') from pg_namespace as n
    union all
    select d.defaclrole::text || d.defaclnamespace::text || d.defaclacl::text
    from pg_default_acl as d
    union all
    select member::text || roleid::text from pg_auth_members
) as entries
"""


def apply_fixes(prod: Site, findings: list[dict[str, str]]) -> None:
    """Each failing finding's statement, run as the role it names."""
    by_name = {name: key for key, name in prod.roles.items()} | {servers.SUPERUSER: "admin"}
    for finding in findings:
        if finding["level"] != "fail":
            continue
        if finding["fix"] == "kpi-red init":
            assert prod.kpi_red(by_name[finding["run_as"]], "init").code == 0
            continue
        assert finding["run_as"] in by_name, finding
        prod.run_sql(by_name[finding["run_as"]], finding["fix"])


def test_doctor_names_each_problem_with_its_fix_and_changes_nothing(prod: Site) -> None:
    before = prod.scalar(CATALOG_STATE)
    checked = prod.kpi_red("reader", "doctor")  # any role can run it
    assert checked.code == 1
    lines = checked.output.splitlines()
    assert lines[-1].endswith("notes") and "problems" in lines[-1], lines[-1]
    assert f"fail  schema kpi_red does not exist; as {prod.roles['dbt']}: kpi-red init" in lines
    assert prod.scalar(CATALOG_STATE) == before  # it never changes anything

    # what the grants would have done, found and fixed one finding at a time
    first = prod.kpi_red("dbt", "doctor", "--json")
    apply_fixes(prod, first.json["findings"])
    second = prod.kpi_red("dbt", "doctor", "--json")
    fixes = [finding["fix"] for finding in second.json["findings"] if finding["level"] == "fail"]
    assert f'grant usage on schema "kpi_red" to "{prod.roles["matcher"]}";' in fixes
    apply_fixes(prod, second.json["findings"])
    prod.dbt("dbt", "build")
    third = prod.kpi_red("dbt", "doctor", "--json")
    apply_fixes(prod, third.json["findings"])
    assert prod.kpi_red("dbt", "doctor").code == 0, prod.kpi_red("dbt", "doctor").output
    assert prod.kpi_red("matcher", "match", "--limit", "20").code == 0

    # upstream drift: a privilege taken away, the links' key dropped
    prod.run_sql(
        "upstream",
        f'revoke insert on canon.identity_links from "{prod.roles["matcher"]}";'
        " alter table canon.identity_links"
        " drop constraint identity_links_source_table_source_pk_key",
    )
    drifted = prod.kpi_red("dbt", "doctor")
    assert drifted.code == 1
    upstream = prod.roles["upstream"]
    assert (
        "fail  canon.identity_links has no unique key on (source_table, source_pk): the"
        f" matcher's inserts need it; as {upstream}: alter table"
        ' "canon"."identity_links" add unique ("source_table", "source_pk");'
    ) in drifted.output.splitlines()
    assert (
        f"fail  {prod.roles['matcher']} lacks INSERT on canon.identity_links (the matcher"
        f' writes); as {upstream}: grant insert on "canon"."identity_links" to'
        f' "{prod.roles["matcher"]}";'
    ) in drifted.output.splitlines()
    apply_fixes(prod, prod.kpi_red("dbt", "doctor", "--json").json["findings"])
    assert prod.kpi_red("dbt", "doctor").code == 0


def test_init_creates_only_the_projects_own_as_the_dbt_role(prod: Site) -> None:
    upstream_before = prod.query(
        "select schemaname, tablename, indexname from pg_indexes"
        " where schemaname in ('cabinet', 'canon', 'claims') order by 1, 2, 3"
    )
    # a role that may not act as the dbt role cannot create the project's objects
    refused = prod.kpi_red("matcher", "init")
    assert refused.code == 1
    assert refused.stderr.strip() == (
        f"Error: {prod.roles['matcher']} may not act as {prod.roles['dbt']} (var dbt_role):"
        f" run it as {prod.roles['dbt']}, or as a member of it"
    )
    # a superuser's init creates them as the dbt role (var dbt_role)
    assert prod.kpi_red("admin", "init").code == 0
    assert set(prod.owners("kpi_red").values()) == {prod.roles["dbt"]}
    assert set(
        row[0] for row in prod.query(
            "select pg_get_userbyid(nspowner) from pg_namespace where nspname = any(%s)",
            (list(PROJECT_SCHEMAS),),
        )
    ) == {prod.roles["dbt"]}  # fmt: skip
    assert (
        prod.query(
            "select schemaname, tablename, indexname from pg_indexes"
            " where schemaname in ('cabinet', 'canon', 'claims') order by 1, 2, 3"
        )
        == upstream_before
    )  # no index, nothing, on an upstream table
    # a log left to another owner (an earlier init by a superuser): one line, the fix
    prod.run_sql("admin", "alter table kpi_red.match_attempts owner to postgres")
    stuck = prod.kpi_red("dbt", "init")
    assert stuck.code == 1
    assert stuck.stderr.strip() == (
        f"Error: kpi_red.match_attempts belongs to postgres, not {prod.roles['dbt']}: as"
        ' postgres or a superuser, run: alter table "kpi_red"."match_attempts" owner to'
        f' "{prod.roles["dbt"]}";'
    )
