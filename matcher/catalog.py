"""What ``kpi-red doctor`` reads: the catalog facts of the contract's tables, the
project's schemas and relations, the roles' privileges and default privileges.

``gather`` reads them in one read-only transaction (``matcher/store/sql/doctor.sql``, a query
per kind of fact over arrays of names): it never changes anything. ``wanted_privileges``
is the list of what each role needs, pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from matcher.settings import Roles, Settings, Tables
from matcher.store import admin
from matcher.store.relations import (
    DBT_SCHEMAS,
    MARTS_SCHEMA,
    MATCHER_READS,
    MATCHER_SCHEMAS,
    READER_READS,
    REVIEWER_READS,
    SETTINGS,
)

SUPPORTED_VERSION_NUM = 150000
"""The oldest PostgreSQL supported (15): CI runs the production suite on it."""
UPSTREAM = ("leads", "registry", "links", "origin", "claims")


@dataclass(frozen=True)
class Facts:
    """What the catalog says (``gather``)."""

    server: Mapping[str, Any]
    roles: Mapping[str, Mapping[str, Any]]
    schemas: Mapping[str, Mapping[str, Any]]
    relations: Mapping[tuple[str, str], Mapping[str, Any]]
    columns: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]
    indexes: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]
    privileges: Mapping[tuple[str, str, str, str, str], bool]
    """(role, kind, schema, name, privilege) -> granted."""
    default_privileges: frozenset[tuple[str, str, str]]
    """(schema, grantee, privilege) of relations the dbt role creates."""
    built: Mapping[str, Any] | None = None
    """The vars of the last dbt build (``ops.kpi_red_settings``)."""


@dataclass(frozen=True)
class Wanted:
    """A privilege a role needs: (role, kind, schema, name, privilege) and why."""

    role: str
    kind: str
    schema: str
    name: str
    privilege: str
    why: str = field(compare=False, default="")

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.role, self.kind, self.schema, self.name, self.privilege)


def ident(name: str) -> str:
    """A quoted SQL identifier (the fixes are printed, never run)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(pair: tuple[str, str]) -> str:
    return f"{ident(pair[0])}.{ident(pair[1])}"


def shown(pair: tuple[str, str]) -> str:
    return ".".join(pair)


def upstream_tables(tables: Tables) -> dict[str, tuple[str, str]]:
    return {name: getattr(tables, name) for name in UPSTREAM}


def wanted_privileges(
    tables: Tables, roles: Roles, *, built: Iterable[tuple[str, str]]
) -> list[Wanted]:
    """Every privilege the three roles need; dbt relations only once they are ``built``."""
    present = set(built)
    upstream = upstream_tables(tables)
    wanted = [
        Wanted(roles.dbt, "database", "", "", "CONNECT", "dbt connects"),
        Wanted(roles.matcher, "database", "", "", "CONNECT", "the matcher connects"),
        Wanted(roles.matcher, "database", "", "", "TEMPORARY", "the matcher stages batches"),
        Wanted(roles.reader, "database", "", "", "CONNECT", "the panel connects"),
        Wanted(roles.dbt, "role", "", roles.matcher, "USAGE", "kpi-red cycle matches as dbt"),
    ]
    for table in upstream.values():
        wanted.append(Wanted(roles.dbt, "schema", table[0], "", "USAGE", "dbt reads sources"))
        wanted.append(Wanted(roles.dbt, "table", *table, "SELECT", "dbt reads it"))
    for name in ("leads", "links", "origin"):
        wanted.append(
            Wanted(roles.matcher, "schema", upstream[name][0], "", "USAGE", "the matcher")
        )
    wanted.append(Wanted(roles.matcher, "table", *tables.leads, "SELECT", "repair-origin"))
    for name in ("links", "origin"):
        for privilege in ("SELECT", "INSERT"):
            wanted.append(
                Wanted(roles.matcher, "table", *upstream[name], privilege, "the matcher writes")
            )
    wanted.append(Wanted(roles.matcher, "schema", tables.attempts[0], "", "USAGE", "its log"))
    for privilege in ("SELECT", "INSERT"):
        wanted.append(Wanted(roles.matcher, "table", *tables.attempts, privilege, "its log"))
    wanted.append(Wanted(roles.matcher, "schema", tables.reviews[0], "", "USAGE", "rejections"))
    wanted.append(Wanted(roles.matcher, "table", *tables.reviews, "SELECT", "rejections"))
    wanted.extend(reviewer_privileges(tables, roles, present=present))
    for schema in MATCHER_SCHEMAS:
        wanted.append(Wanted(roles.matcher, "schema", schema, "", "USAGE", "dbt's relations"))
    wanted.append(Wanted(roles.reader, "schema", MARTS_SCHEMA, "", "USAGE", "the marts"))
    for relation in MATCHER_READS:
        if relation in present:
            wanted.append(Wanted(roles.matcher, "table", *relation, "SELECT", "the matcher"))
    for relation in READER_READS:
        if relation in present:
            wanted.append(Wanted(roles.reader, "table", *relation, "SELECT", "the panel"))
    return wanted


def reviewer_privileges(
    tables: Tables, roles: Roles, *, present: set[tuple[str, str]]
) -> list[Wanted]:
    """What the reviewer role (``kpi-red review``, ``kpi-red unlink``) needs, when it exists."""
    role = roles.reviewer
    why = "review and unlink"
    wanted = [Wanted(role, "database", "", "", "CONNECT", why)]
    for schema in dict.fromkeys(
        name[0]
        for name in (
            tables.leads,
            tables.registry,
            tables.claims,
            tables.links,
            tables.origin,
            tables.attempts,
            tables.reviews,
            tables.removals,
        )
    ):
        wanted.append(Wanted(role, "schema", schema, "", "USAGE", why))
    for table in (tables.leads, tables.registry, tables.claims, tables.attempts):
        wanted.append(Wanted(role, "table", *table, "SELECT", why))
    for privilege in ("SELECT", "INSERT", "DELETE"):
        wanted.append(Wanted(role, "table", *tables.links, privilege, why))
    for table in (tables.origin, tables.reviews, tables.removals):
        for privilege in ("SELECT", "INSERT"):
            wanted.append(Wanted(role, "table", *table, privilege, why))
    for schema in MATCHER_SCHEMAS:
        wanted.append(Wanted(role, "schema", schema, "", "USAGE", why))
    for relation in REVIEWER_READS:
        if relation in present:
            wanted.append(Wanted(role, "table", *relation, "SELECT", why))
    return wanted


# --- gather: the catalog, read-only ------------------------------------------------------


def gather(conninfo: str, *, settings: Settings, roles: Roles) -> Facts:
    """Read what ``diagnose`` needs, in one read-only transaction."""
    tables = settings.tables
    role_names = [roles.dbt, roles.matcher, roles.reader, roles.reviewer]
    upstream = list(upstream_tables(tables).values())
    named = [
        *upstream,
        tables.attempts,
        tables.reviews,
        tables.removals,
        *MATCHER_READS,
        *READER_READS,
        *REVIEWER_READS,
    ]
    schemas = list(dict.fromkeys([*(name[0] for name in named), *DBT_SCHEMAS]))
    pairs = {"schemas": [name[0] for name in named], "names": [name[1] for name in named]}
    with admin.read_only(conninfo) as conn:
        server = admin.doctor_rows(conn, "server")[0]
        role_rows = admin.doctor_rows(conn, "roles", {"roles": role_names})
        present_roles = {row["role_name"] for row in role_rows if row["is_present"]}
        relations = {
            (row["schema_name"], row["relation_name"]): row
            for row in admin.doctor_rows(
                conn, "relations", {**pairs, "owned_schemas": [tables.attempts[0], *DBT_SCHEMAS]}
            )
        }
        schema_rows = admin.doctor_rows(conn, "schemas", {"schemas": schemas})
        present_schemas = {row["schema_name"] for row in schema_rows if row["is_present"]}
        wanted = [
            item
            for item in wanted_privileges(tables, roles, built=relations)
            if item.role in present_roles
            and (item.kind != "role" or item.name in present_roles)
            and (item.kind != "schema" or item.schema in present_schemas)
            and (item.kind != "table" or (item.schema, item.name) in relations)
        ]
        privileges = {
            (row["role_name"], row["object_kind"], row["schema_name"], row["object_name"],
             row["privilege"]): bool(row["is_granted"])
            for row in admin.doctor_rows(
                conn,
                "privileges",
                {
                    "roles": [item.role for item in wanted],
                    "kinds": [item.kind for item in wanted],
                    "schemas": [item.schema for item in wanted],
                    "names": [item.name for item in wanted],
                    "privileges": [item.privilege for item in wanted],
                },
            )
        }  # fmt: skip
        columns: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in admin.doctor_rows(conn, "columns", pairs):
            columns.setdefault((row["schema_name"], row["relation_name"]), []).append(row)
        indexes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in admin.doctor_rows(conn, "indexes", pairs):
            indexes.setdefault((row["schema_name"], row["relation_name"]), []).append(row)
        defaults = frozenset(
            (row["schema_name"], row["grantee"], row["privilege"])
            for row in admin.doctor_rows(conn, "default_privileges", {"owner": roles.dbt})
        )
        built = admin.read_dbt_settings(conn) if SETTINGS in relations else None
    return Facts(
        server=server,
        roles={row["role_name"]: row for row in role_rows},
        schemas={row["schema_name"]: row for row in schema_rows},
        relations=relations,
        columns=columns,
        indexes=indexes,
        privileges=privileges,
        default_privileges=defaults,
        built=built,
    )
