"""A production layout for the production suite: upstream tables owned by another role,
exactly the data contract (no defaults, no index beyond the keys), and the project's
three roles, each command run as the role docs/production.md says.

``Site`` is one such database: its roles (suffixed, so tests never share one), a
``profiles.yml`` with a target per role (the password from ``DBT_ENV_SECRET_PGPASSWORD``),
and ways to run ``kpi-red``, dbt and SQL as any of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner
from conftest import PROJECT_DIR
from psycopg import sql
from servers import PASSWORD, SUPERUSER, Server, create_roles, drop_database_and_roles

from matcher import dbt
from matcher.cli import main
from matcher.settings import load_settings

ROLE_KEYS = ("upstream", "dbt", "matcher", "reader", "analyst")

# The data contract's upstream tables, as their owner made them: keys only, no defaults,
# no other index.
UPSTREAM_DDL = """
create schema cabinet;
create schema canon;
create schema claims;
create table cabinet.leads (
    lead_id text primary key, created_at timestamptz not null, updated_at timestamptz,
    full_name text, phone text, document_type text, document_number text, email text
);
create table canon.identity_registry (
    person_key text primary key, full_name text, phone text, document_type text,
    document_number text, email text, created_at timestamptz, updated_at timestamptz
);
create table canon.identity_links (
    source_table text not null, source_pk text not null, person_key text not null,
    match_rule text, match_score real, linked_at timestamptz, linked_by text, run_id text,
    unique (source_table, source_pk)
);
create table canon.identity_origin (
    person_key text primary key, origin_tag text, origin_source_pk text,
    origin_created_at timestamptz, recorded_at timestamptz
);
create table claims.lead_claims (claim_id text primary key, lead_id text, claimed_at timestamptz);
"""
# what `kpi-red demo` adds beyond the contract's keys (the recommended indexes)
DEMO_INDEXES = (
    "drop index cabinet.leads_created_at_idx, claims.lead_claims_lead_id_idx,"
    " canon.identity_links_person_key_idx"
)

PROFILE = """
{profile}:
  target: dbt
  outputs:
{outputs}
"""
OUTPUT = """    {key}:
      type: postgres
      host: "{host}"
      port: {port}
      user: "{user}"
      password: "{{{{ env_var('DBT_ENV_SECRET_PGPASSWORD') }}}}"
      dbname: "{dbname}"
      schema: analytics
      threads: 4
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    output: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.output)


@dataclass
class Site:
    server: Server
    dbname: str
    home: Path
    roles: dict[str, str]
    project_dir: Path = PROJECT_DIR
    profile_name: str = "kpi_red_recovery"
    vars: dict[str, Any] = field(default_factory=dict)

    def conninfo(self, key: str = "admin") -> str:
        user = SUPERUSER if key == "admin" else self.roles[key]
        return self.server.conninfo(dbname=self.dbname, user=user)

    def write_profiles(self) -> None:
        outputs = "".join(
            OUTPUT.format(
                key=key,
                host=self.server.host,
                port=self.server.port,
                user=SUPERUSER if key == "admin" else self.roles[key],
                dbname=self.dbname,
            )
            for key in (*ROLE_KEYS, "admin")
        )
        (self.home / "profiles.yml").write_text(
            PROFILE.format(profile=self.profile_name, outputs=outputs)
        )

    # --- running things as a role ------------------------------------------------------

    def kpi_red(
        self,
        key: str,
        command: str,
        *args: str,
        project_dir: Path | None = None,
        extra_vars: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Outcome:
        """``kpi-red <command> <args>`` as role ``key`` (its target of the profile)."""
        given = {**self.vars, **(extra_vars or {})}
        argv = [
            command,
            *args,
            "--profiles-dir",
            str(self.home),
            "--target",
            key,
            "--project-dir",
            str(project_dir or self.project_dir),
        ]
        if given:
            argv += ["--vars", json.dumps(given)]
        result = CliRunner().invoke(
            main,
            argv,
            env={
                "DBT_ENV_SECRET_PGPASSWORD": PASSWORD,
                "KPI_RED_DSN": None,  # type: ignore[dict-item]
                "KPI_RED_PROJECT_DIR": None,  # type: ignore[dict-item]
                **(env or {}),
            },
            catch_exceptions=False,
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def dbt(
        self, key: str, *args: str, extra_vars: Mapping[str, Any] | None = None
    ) -> dbt.DbtResult:
        """``dbt <args>`` as role ``key``, with the site's vars."""
        import os

        settings = load_settings(self.project_dir)
        previous = os.environ.get("DBT_ENV_SECRET_PGPASSWORD")
        os.environ["DBT_ENV_SECRET_PGPASSWORD"] = PASSWORD
        try:
            return dbt.run(
                args,
                settings=settings,
                profiles_dir=self.home,
                target=key,
                dbt_vars={**self.vars, **(extra_vars or {})},
                target_path=self.home / "target",
            )
        finally:
            if previous is None:
                os.environ.pop("DBT_ENV_SECRET_PGPASSWORD", None)
            else:
                os.environ["DBT_ENV_SECRET_PGPASSWORD"] = previous

    def run_sql(self, key: str, script: str) -> list[str]:
        """A script (what `| psql` would run) as role ``key``; its notices. Fails on any
        WARNING (`no privileges were granted`, ...) and on any error."""
        notices: list[tuple[str, str]] = []
        with psycopg.connect(self.conninfo(key), autocommit=True) as conn:
            conn.add_notice_handler(
                lambda diag: notices.append((diag.severity or "", diag.message_primary or ""))
            )
            conn.execute(script)  # type: ignore[arg-type]
        warnings = [message for severity, message in notices if severity == "WARNING"]
        assert not warnings, f"{key} got warnings: {warnings}"
        return [message for _, message in notices]

    def query(self, statement: str, params: Any = None, *, key: str = "admin") -> list[Any]:
        with psycopg.connect(self.conninfo(key)) as conn:
            return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]

    def scalar(self, statement: str, params: Any = None, *, key: str = "admin") -> Any:
        rows = self.query(statement, params, key=key)
        return rows[0][0] if rows else None

    def denied(self, key: str, statement: str) -> bool:
        with psycopg.connect(self.conninfo(key), autocommit=True) as conn:
            try:
                conn.execute(statement)  # type: ignore[arg-type]
            except psycopg.errors.InsufficientPrivilege:
                return True
        return False

    def owners(self, *schemas: str) -> dict[str, str]:
        """``schema.relation -> owner`` of every relation in ``schemas``."""
        rows = self.query(
            "select n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)"
            " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%s) and c.relkind in ('r', 'v', 'p', 'm')",
            (list(schemas),),
        )
        return dict(rows)  # type: ignore[arg-type]

    # --- the setup docs/production.md describes -------------------------

    def setup_upstream(self) -> None:
        """The DBA creates the roles; the upstream owner has its tables, full of (demo)
        data; each owner runs its part of `kpi-red grants`."""
        with self.server.connect(dbname="postgres") as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.dbname)))
        with self.server.connect(dbname=self.dbname) as conn:
            # the upstream owner's own schemas (not the project's business)
            conn.execute(
                sql.SQL("grant create on database {} to {}").format(
                    sql.Identifier(self.dbname), sql.Identifier(self.roles["upstream"])
                )
            )
            conn.execute(
                sql.SQL("grant {} to {}").format(
                    sql.Identifier(self.roles["dbt"]), sql.Identifier(self.roles["analyst"])
                )
            )
        self.run_sql("upstream", UPSTREAM_DDL)
        loaded = self.kpi_red("upstream", "demo")
        assert loaded.code == 0, loaded.output + loaded.stderr
        self.run_sql("upstream", DEMO_INDEXES)
        for key, part in (("admin", "database"), ("upstream", "upstream")):
            printed = self.kpi_red(key, "grants", "--for", part)
            assert printed.code == 0, printed.output + printed.stderr
            self.run_sql(key, printed.output)

    def setup_project(self) -> None:
        """The dbt role: init, its part of the grants, the first build."""
        initialized = self.kpi_red("dbt", "init")
        assert initialized.code == 0, initialized.output + initialized.stderr
        printed = self.kpi_red("dbt", "grants", "--for", "project")
        assert printed.code == 0, printed.output
        self.run_sql("dbt", printed.output)
        self.dbt("dbt", "build")


@contextmanager
def site(server: Server, home: Path, **kwargs: Any) -> Iterator[Site]:
    """A fresh database and five fresh roles on ``server``; all dropped afterwards."""
    suffix = uuid.uuid4().hex[:6]
    roles = {
        "upstream": f"etl_{suffix}",
        "dbt": f"kpi_red_dbt_{suffix}",
        "matcher": f"kpi_red_matcher_{suffix}",
        "reader": f"kpi_red_reader_{suffix}",
        "analyst": f"analyst_{suffix}",
    }
    created = Site(
        server=server,
        dbname=f"kpi_red_prod_{suffix}",
        home=home,
        roles=roles,
        vars={
            "dbt_role": roles["dbt"],
            "matcher_role": roles["matcher"],
            "reader_role": roles["reader"],
        },
        **kwargs,
    )
    created.write_profiles()
    create_roles(server, *roles.values())
    try:
        yield created
    finally:
        drop_database_and_roles(server, created.dbname, *roles.values())
