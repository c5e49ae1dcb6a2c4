"""``kpi-red doctor``: a live database checked against the data contract and the roles.

``matcher.catalog.gather`` reads the catalog (read-only); ``diagnose`` is pure: one
``Finding`` per problem, each with the statement that fixes it and the role that must run
it. ``fail`` findings break something (the exit code is 1); ``note`` ones are advice (a
recommended index, an unset var).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matcher import contract
from matcher.catalog import (
    DBT_SCHEMAS,
    MATCHER_READS,
    SUPPORTED_VERSION_NUM,
    Facts,
    Wanted,
    ident,
    qualified,
    shown,
    upstream_tables,
    wanted_privileges,
)
from matcher.settings import Roles, Settings, Tables
from matcher.store.relations import INTERFACE_SCHEMA, MARTS_SCHEMA


@dataclass(frozen=True)
class Finding:
    level: str
    """``fail`` or ``note``."""
    problem: str
    fix: str
    """The statement (or command) that fixes it."""
    run_as: str
    """Who runs the fix: a role's name (a superuser can too), or who that is."""

    def line(self) -> str:
        return f"{self.level:<4}  {self.problem}; as {self.run_as}: {self.fix}"


# --- diagnose: pure ----------------------------------------------------------------------


def diagnose(facts: Facts, *, settings: Settings, roles: Roles) -> list[Finding]:
    """Every problem and note, in the order a DBA would fix them."""
    return [
        *_server(facts),
        *_roles(facts, roles),
        *_upstream(facts, settings.tables),
        *_project(facts, settings.tables, roles),
        *_privileges(facts, settings.tables, roles),
        *_agreement(facts, settings),
        *_notes(facts, settings.tables, roles),
    ]


def _server(facts: Facts) -> Iterator[Finding]:
    if int(facts.server["version_num"]) < SUPPORTED_VERSION_NUM:
        yield Finding(
            "fail",
            f"PostgreSQL {facts.server['version']} is older than 15, the oldest supported",
            "upgrade the server to PostgreSQL 15 or newer",
            "the DBA",
        )


def _roles(facts: Facts, roles: Roles) -> Iterator[Finding]:
    for name, what in ((roles.dbt, "dbt"), (roles.matcher, "matcher"), (roles.reader, "reader")):
        if not facts.roles.get(name, {}).get("is_present"):
            yield Finding(
                "fail",
                f"role {name} (the {what} role) does not exist",
                f"create role {ident(name)} login;",
                "the DBA",
            )
    if not facts.roles.get(roles.reviewer, {}).get("is_present"):
        yield Finding(
            "note",
            f"role {roles.reviewer} (the reviewer role: `kpi-red review` and `kpi-red unlink`,"
            " nothing else) does not exist; reviews then need another role's rights",
            f"create role {ident(roles.reviewer)} login; then `kpi-red grants` again",
            "the DBA",
        )


def _upstream(facts: Facts, tables: Tables) -> Iterator[Finding]:
    for key, table in upstream_tables(tables).items():
        relation = facts.relations.get(table)
        if relation is None:
            columns = ", ".join(
                f"{ident(column.name)} {contract.SQL_TYPES[column.data_type]}"
                for column in contract.UPSTREAM_COLUMNS[key]
            )
            yield Finding(
                "fail",
                f"{shown(table)} does not exist (the data contract's {key} table)",
                f"create table {qualified(table)} ({columns}); -- see the data contract",
                "its upstream owner",
            )
            continue
        owner = str(relation["owner"])
        present = {row["column_name"]: row for row in facts.columns.get(table, ())}
        for column in contract.UPSTREAM_COLUMNS[key]:
            row = present.get(column.name)
            sql_type = contract.SQL_TYPES[column.data_type]
            if row is None:
                yield Finding(
                    "fail",
                    f"{shown(table)} has no column {column.name} ({sql_type})",
                    f"alter table {qualified(table)} add column {ident(column.name)} {sql_type};",
                    owner,
                )
            elif not contract.accepts(column.data_type, str(row["data_type"])):
                yield Finding(
                    "fail",
                    f"{shown(table)}.{column.name} is {row['data_type']}, the contract says"
                    f" {sql_type}",
                    f"alter table {qualified(table)} alter column {ident(column.name)}"
                    f" type {sql_type};",
                    owner,
                )
        if key in contract.REQUIRED_KEYS:
            yield from _written_table(facts, key, table, owner, present)


def _written_table(
    facts: Facts, key: str, table: tuple[str, str], owner: str, present: Mapping[str, Any]
) -> Iterator[Finding]:
    """The key the matcher's ``on conflict`` needs, and no NOT NULL column it does not
    set (it relies on no default)."""
    wanted = set(contract.REQUIRED_KEYS[key])
    unique = [
        index
        for index in facts.indexes.get(table, ())
        if index["is_unique"] and set(index["column_names"] or ()) == wanted
    ]
    columns = ", ".join(ident(name) for name in contract.REQUIRED_KEYS[key])
    if not unique:
        yield Finding(
            "fail",
            f"{shown(table)} has no unique key on ({', '.join(contract.REQUIRED_KEYS[key])}):"
            " the matcher's inserts need it",
            f"alter table {qualified(table)} add unique ({columns});",
            owner,
        )
    elif all(index["is_deferrable"] for index in unique):
        yield Finding(
            "fail",
            f"{shown(table)}'s unique key on ({', '.join(contract.REQUIRED_KEYS[key])}) is"
            " deferrable: `on conflict` cannot use it",
            f"alter table {qualified(table)} add unique ({columns});",
            owner,
        )
    known = {column.name for column in contract.UPSTREAM_COLUMNS[key]}
    for name, row in present.items():
        if name not in known and row["is_not_null"] and not row["has_default"]:
            yield Finding(
                "fail",
                f"{shown(table)}.{name} is NOT NULL without a default: the matcher does not"
                " write it",
                f"alter table {qualified(table)} alter column {ident(name)} drop not null;",
                owner,
            )


def _project(facts: Facts, tables: Tables, roles: Roles) -> Iterator[Finding]:
    """The project's schemas and relations: present, and owned by the dbt role."""
    logs = (tables.attempts[0], tables.reviews[0], tables.removals[0])
    for schema in dict.fromkeys((*logs, *DBT_SCHEMAS)):
        row = facts.schemas.get(schema) or {}
        if not row.get("is_present"):
            yield Finding("fail", f"schema {schema} does not exist", "kpi-red init", roles.dbt)
        elif row["owner"] != roles.dbt and facts.roles.get(roles.dbt, {}).get("is_present"):
            yield Finding(
                "fail",
                f"schema {schema} belongs to {row['owner']}, not the dbt role {roles.dbt}",
                f"alter schema {ident(schema)} owner to {ident(roles.dbt)};",
                str(row["owner"]),
            )
    for log in (tables.attempts, tables.reviews, tables.removals):
        if log not in facts.relations:
            yield Finding("fail", f"{shown(log)} does not exist", "kpi-red init", roles.dbt)
    if not facts.roles.get(roles.dbt, {}).get("is_present"):
        return  # without the role, "not owned by it" says nothing more
    project_schemas = {tables.attempts[0], tables.reviews[0], tables.removals[0], *DBT_SCHEMAS}
    for (schema, name), row in sorted(facts.relations.items()):
        if schema in project_schemas and row["owner"] != roles.dbt:
            kind = "view" if row["kind"] == "v" else "table"
            yield Finding(
                "fail",
                f"{schema}.{name} belongs to {row['owner']}, not {roles.dbt}: a dbt build as"
                f" {roles.dbt} cannot replace it, and the grants do not reach it",
                f"alter {kind} {qualified((schema, name))} owner to {ident(roles.dbt)};",
                str(row["owner"]),
            )


def _privileges(facts: Facts, tables: Tables, roles: Roles) -> Iterator[Finding]:
    """Missing privileges, one finding per role and object (privileges grouped)."""
    missing: dict[tuple[str, str, str, str], list[Wanted]] = {}
    for item in wanted_privileges(tables, roles, built=facts.relations):
        if facts.privileges.get(item.key) is False:
            missing.setdefault((item.role, item.kind, item.schema, item.name), []).append(item)
    database = str(facts.server["database_name"])
    for (role, kind, schema, name), items in missing.items():
        privileges = ", ".join(item.privilege.lower() for item in items)
        why = items[0].why
        if kind == "database":
            yield Finding(
                "fail",
                f"{role} lacks {privileges.upper()} on database {database} ({why})",
                f"grant {privileges} on database {ident(database)} to {ident(role)};",
                str(facts.server["database_owner"]),
            )
        elif kind == "role":
            yield Finding(
                "fail",
                f"{role} is not a member of {name} ({why})",
                f"grant {ident(name)} to {ident(role)};",
                "the DBA (a superuser, or the role that created them)",
            )
        elif kind == "schema":
            owner = facts.schemas.get(schema, {}).get("owner", "its owner")
            yield Finding(
                "fail",
                f"{role} lacks USAGE on schema {schema} ({why})",
                f"grant usage on schema {ident(schema)} to {ident(role)};",
                str(owner),
            )
        else:
            owner = facts.relations.get((schema, name), {}).get("owner", "its owner")
            yield Finding(
                "fail",
                f"{role} lacks {privileges.upper()} on {schema}.{name} ({why})",
                f"grant {privileges} on {qualified((schema, name))} to {ident(role)};",
                str(owner),
            )
    for schema, grantee in (
        (MARTS_SCHEMA, roles.matcher),
        (INTERFACE_SCHEMA, roles.matcher),
        (MARTS_SCHEMA, roles.reader),
    ):
        present = all(facts.roles.get(name, {}).get("is_present") for name in (roles.dbt, grantee))
        if present and (schema, grantee, "SELECT") not in facts.default_privileges:
            yield Finding(
                "fail",
                f"what {roles.dbt} builds in {schema} is not readable by {grantee} by default:"
                " the next build would take its access away",
                f"alter default privileges for role {ident(roles.dbt)} in schema {ident(schema)}"
                f" grant select on tables to {ident(grantee)};",
                roles.dbt,
            )


def _agreement(facts: Facts, settings: Settings) -> Iterator[Finding]:
    from matcher import agreement

    if facts.built is None:
        return
    for difference in agreement.differences(settings, facts.built):
        yield Finding(
            "fail",
            f"kpi-red's settings differ from the last dbt build's: {difference}",
            "run kpi-red with the vars dbt uses (its project directory, the same --vars)",
            "whoever runs kpi-red",
        )


def _notes(facts: Facts, tables: Tables, roles: Roles) -> Iterator[Finding]:
    if not roles.dbt_is_set:
        yield Finding(
            "note",
            "var dbt_role is not set: a dbt build run by another role (a superuser) makes"
            " relations it owns, which the dbt role cannot replace",
            f"set `dbt_role: {roles.dbt}` in the vars of dbt_project.yml",
            "the analytics engineer",
        )
    unbuilt = [shown(relation) for relation in MATCHER_READS if relation not in facts.relations]
    if unbuilt:
        yield Finding("note", f"not built yet: {', '.join(unbuilt)}", "dbt build", roles.dbt)
    for key, wanted in contract.RECOMMENDED_INDEXES.items():
        table = getattr(tables, key)
        if table not in facts.relations:
            continue
        leading = {(index["column_names"] or [None])[0] for index in facts.indexes.get(table, ())}
        for column, use in wanted:
            if column not in leading:
                yield Finding(
                    "note",
                    f"{shown(table)} has no index on ({column}), recommended for {use}",
                    f"create index on {qualified(table)} ({ident(column)});",
                    str(facts.relations[table]["owner"]),
                )


def report(findings: Sequence[Finding], *, facts: Facts, roles: Roles) -> str:
    """The findings, one line each, and a last line that sums them up."""
    failures = sum(finding.level == "fail" for finding in findings)
    notes = len(findings) - failures
    head = (
        f"database {facts.server['database_name']}, PostgreSQL {facts.server['version']},"
        f" checked as {facts.server['current_role_name']}; roles: dbt {roles.dbt},"
        f" matcher {roles.matcher}, reader {roles.reader}, reviewer {roles.reviewer}"
    )
    tail = (
        f"{failures} problem{'s' * (failures != 1)}, {notes} note{'s' * (notes != 1)}"
        if failures
        else f"all well ({notes} note{'s' * (notes != 1)})"
    )
    return "\n".join([head, *(finding.line() for finding in findings), tail])
