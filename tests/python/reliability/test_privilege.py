"""Least privilege, and configured names quoted as identifiers.

Two throwaway login roles get exactly what ``kpi-red grants`` prints. The matcher role
runs ``kpi-red match`` and ``repair-origin`` and cannot write anything else; the reader
role runs ``kpi-red metrics --json`` and cannot write at all. (The embedded server trusts
its socket, so the passwords are not checked; the grants are.)

Schema and table names come from ``dbt_project.yml`` vars: a project whose names need
quoting (spaces, capitals, quotes, a semicolon) still works through ``kpi-red init`` and
the matcher's write path, and nothing in them is run as SQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import reliability_support as support
import yaml
from click.testing import CliRunner
from conftest import PROJECT_DIR, Database
from psycopg import sql

from matcher import records, write
from matcher.cli import main
from matcher.normalize import identifiers_hash
from matcher.settings import load_settings
from matcher.store import admin as store_admin
from matcher.store import base as store_base
from matcher.store import demo as store_demo

pytestmark = pytest.mark.reliability

PASSWORD = "Priv-Sup3rS3cret"


def as_role(database: Database, role: str) -> str:
    return f"{database.conninfo.replace('user=postgres', f'user={role}')} password={PASSWORD}"


def kpi_red(conninfo: str, *args: str, project_dir: Path = PROJECT_DIR) -> tuple[int, str]:
    env = {"KPI_RED_DSN": conninfo, "KPI_RED_PROJECT_DIR": str(project_dir)}
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def denied(conninfo: str, statement: str) -> bool:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


@contextmanager
def login_roles(database: Database, names: Sequence[str]) -> Iterator[None]:
    """New login roles (password ``PASSWORD``) for the duration, then whatever they own in
    the database dropped and the roles with it."""
    with database.connect(autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("create role {} login password {}").format(
                    sql.Identifier(name), sql.Literal(PASSWORD)
                )
            )
    try:
        yield
    finally:
        with database.connect(autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        with psycopg.connect(
            database.conninfo.replace(f"dbname={database.name}", "dbname=postgres"),
            autocommit=True,
        ) as conn:
            for name in names:
                conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@pytest.fixture
def roles(make_database: Callable[..., Database]) -> Iterator[tuple[Database, str, str]]:
    """A clone of the demo database and two new roles with the printed grants applied."""
    suffix = uuid.uuid4().hex[:8]
    matcher_role, reader_role = f"kpi_red_matcher_{suffix}", f"kpi_red_reader_{suffix}"
    with (
        support.cloned(support.golden(make_database)) as database,
        login_roles(database, (matcher_role, reader_role)),
    ):
        # a locked-down database: temporary tables only where granted (the matcher
        # stages its batches in one)
        with database.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("revoke temporary on database {} from public").format(
                    sql.Identifier(database.name)
                )
            )
        # one superuser built everything here: it is the dbt role and runs every part
        code, grants = kpi_red(
            database.conninfo,
            "grants",
            "--for",
            "all",
            "--dbt-role",
            "postgres",
            "--matcher-role",
            matcher_role,
            "--reader-role",
            reader_role,
        )
        assert code == 0, grants
        with database.connect(autocommit=True) as conn:
            conn.execute(grants)  # type: ignore[arg-type]
        yield database, matcher_role, reader_role


def test_the_matcher_role_matches_and_writes_nothing_else(
    roles: tuple[Database, str, str],
) -> None:
    database, matcher_role, _ = roles
    matcher = as_role(database, matcher_role)
    code, output = kpi_red(matcher, "match", "--limit", "300", "--batch-size", "100", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["claimed"] == 300 and summary["links_written"] > 0
    code, output = kpi_red(matcher, "repair-origin", "--json")
    assert code == 0, output
    assert json.loads(output)["origins_added"] > 0
    assert (
        database.scalar(
            "select count(*) from kpi_red.match_attempts where run_id = %s", (summary["run_id"],)
        )
        == 300
    )

    assert denied(
        matcher,
        "insert into canon.identity_registry (person_key, full_name) values ('P-X', 'X')",
    )
    assert denied(matcher, "update cabinet.leads set full_name = 'X'")
    assert denied(matcher, "delete from canon.identity_links")
    assert denied(matcher, "delete from kpi_red.match_attempts")  # append-only for it too
    assert denied(matcher, "insert into claims.lead_claims (claim_id, lead_id) values ('C', 'L')")
    assert denied(matcher, "truncate ops.cabinet_kpi_red_recovery_queue")
    assert denied(matcher, "drop table canon.identity_links")
    assert denied(matcher, "create table kpi_red.extra (id integer)")


def test_the_reader_role_reads_the_metrics_and_writes_nothing(
    roles: tuple[Database, str, str],
) -> None:
    database, _, reader_role = roles
    reader = as_role(database, reader_role)
    code, output = kpi_red(reader, "metrics", "--json")
    assert code == 0, output
    assert json.loads(output)["current_backlog"] > 0

    assert denied(
        reader, "insert into ops.cabinet_kpi_red_recovery_queue (lead_source_pk) values ('L')"
    )
    assert denied(reader, "delete from ops.v_cabinet_kpi_red_recovery_metrics_daily")
    assert denied(reader, "insert into kpi_red.match_attempts (run_id) values ('r')")
    assert denied(reader, "select * from canon.identity_registry")
    assert denied(reader, "drop view ops.v_cabinet_kpi_red_backlog")
    # the matcher through the reader role: one line, exit 1, nothing written
    code, output = kpi_red(reader, "match", "--limit", "10")
    assert code == 1
    assert output.startswith("Error: permission denied") and len(output.splitlines()) == 1
    assert PASSWORD not in output


ODD_VARS = {
    "leads_schema": "Cabinet Leads",
    "leads_table": 'leads"; drop table canary; --',
    "links_schema": "Canon Links",
    "links_table": "Identity-Links",
    "origin_schema": "canon",
    "origin_table": "origin'); drop table canary; --",
    "attempts_schema": 'kpi "red"',
    "attempts_table": "Match Attempts",
    "registry_schema": "Canon Registry",
    "registry_table": "persons'); drop table canary; --",
    "claims_schema": "Claims",
    "claims_table": 'lead "claims"',
}


@pytest.fixture
def odd_project(tmp_path: Path) -> Path:
    """A copy of dbt_project.yml whose table names need quoting."""
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    project["vars"].update(ODD_VARS)
    directory = tmp_path / "odd_project"
    directory.mkdir()
    (directory / "dbt_project.yml").write_text(yaml.safe_dump(project, allow_unicode=True))
    return directory


def test_configured_names_are_quoted_identifiers_never_sql(
    make_database: Callable[..., Database], odd_project: Path
) -> None:
    database = make_database(init=False)
    database.execute("create table public.canary (id integer)")
    settings = load_settings(odd_project)
    tables = settings.tables
    assert tables.leads == ("Cabinet Leads", ODD_VARS["leads_table"])

    code, output = kpi_red(database.conninfo, "init", project_dir=odd_project)
    assert code == 0, output

    def relations() -> set[tuple[str, ...]]:
        return {
            tuple(row)
            for row in database.query(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema not in ('pg_catalog', 'information_schema')"
            )
        }

    # init makes the project's own log only; links and origin are upstream's
    assert {tables.attempts, ("public", "canary")} <= relations()
    assert not {tables.links, tables.origin} & relations()
    with store_base.connect(database.conninfo) as conn, conn.transaction():
        store_demo.run_demo_sql(conn, "ddl", tables=tables)  # as their owner would
    assert {tables.links, tables.origin} <= relations()

    # the write path (which re-checks the lead, its claims and the person in the sources)
    # and repair-origin with those names (the leads and registry tables: the demo's DDL)
    for table, key in ((tables.leads, "lead_id"), (tables.registry, "person_key")):
        database.execute(
            sql.SQL(
                "insert into {} ({}, created_at, document_number) values (%s, now(), '1')"
            ).format(sql.Identifier(*table), sql.Identifier(key)),
            ("L1" if key == "lead_id" else "P1",),
        )
    no_identifiers = dict.fromkeys(("full_name", "phone", "document_type", "email"))
    raw_hash = identifiers_hash(**no_identifiers, document_number="1")
    decision = records.Decision(
        lead=records.Lead("L1", datetime.now(UTC), raw_hash, None, {"document": "DNI:1"}),
        outcome="matched",
        match_rule="document",
        match_score=100,
        person_key="P1",
        evidence={"document": {"value": "DNI:1", "person_keys": ["P1"]}},
    )
    with store_base.connect(database.conninfo) as conn, conn.transaction():
        written = write.write_decisions(
            conn,
            [decision],
            person_hashes={"P1": raw_hash},
            settings=settings,
            run_id="odd",
            started_at=datetime.now(UTC),
        )
        assert (written.links_written, written.origins_written) == (1, 1)
        conn.execute(sql.SQL("delete from {}").format(sql.Identifier(*tables.origin)))
        assert store_admin.repair_origin(conn, tables=tables) == 1
    for name in (tables.links, tables.origin, tables.attempts):
        assert (
            database.scalar(sql.SQL("select count(*) from {}").format(sql.Identifier(*name))) == 1
        )
    assert database.scalar("select count(*) from public.canary") == 0  # still there

    code, grants = kpi_red(database.conninfo, "grants", "--for", "all", project_dir=odd_project)
    assert code == 0
    assert '"Cabinet Leads"."leads""; drop table canary; --"' in grants
    assert '"kpi ""red"""."Match Attempts"' in grants
