"""The data contract: what the project needs of each upstream table, and of its own.

Needed (``kpi-red doctor`` fails without it): the tables and columns below with these
types, the unique key ``(source_table, source_pk)`` on the links (the matcher's inserts
are ``on conflict do nothing`` on it) and ``(person_key)`` on the origin, and no other
NOT NULL column without a default in the two tables the matcher writes (it sets every
column of the contract itself and relies on no default). Only recommended (a note): the
indexes in ``RECOMMENDED_INDEXES``. Pure data, no database.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text"
TIMESTAMPTZ = "timestamp with time zone"
REAL = "real"

TYPE_FAMILIES: dict[str, frozenset[str]] = {
    TEXT: frozenset({"text", "character varying", "character", "name", "citext"}),
    TIMESTAMPTZ: frozenset({"timestamp with time zone"}),
    REAL: frozenset({"real", "double precision", "numeric"}),
}
"""The column types the contract accepts for each of its types."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    written: bool = False
    """Whether the matcher writes it (a wrong type then breaks its inserts)."""


UPSTREAM_COLUMNS: dict[str, tuple[Column, ...]] = {
    "leads": (
        Column("lead_id", TEXT),
        Column("created_at", TIMESTAMPTZ),
        Column("updated_at", TIMESTAMPTZ),
        Column("full_name", TEXT),
        Column("phone", TEXT),
        Column("document_type", TEXT),
        Column("document_number", TEXT),
        Column("email", TEXT),
    ),
    "registry": (
        Column("person_key", TEXT),
        Column("full_name", TEXT),
        Column("phone", TEXT),
        Column("document_type", TEXT),
        Column("document_number", TEXT),
        Column("email", TEXT),
        Column("created_at", TIMESTAMPTZ),
        Column("updated_at", TIMESTAMPTZ),
    ),
    "links": (
        Column("source_table", TEXT, written=True),
        Column("source_pk", TEXT, written=True),
        Column("person_key", TEXT, written=True),
        Column("match_rule", TEXT, written=True),
        Column("match_score", REAL, written=True),
        Column("linked_at", TIMESTAMPTZ, written=True),
        Column("linked_by", TEXT, written=True),
        Column("run_id", TEXT, written=True),
    ),
    "origin": (
        Column("person_key", TEXT, written=True),
        Column("origin_tag", TEXT, written=True),
        Column("origin_source_pk", TEXT, written=True),
        Column("origin_created_at", TIMESTAMPTZ, written=True),
        Column("recorded_at", TIMESTAMPTZ, written=True),
    ),
    "claims": (
        Column("claim_id", TEXT),
        Column("lead_id", TEXT),
        Column("claimed_at", TIMESTAMPTZ),
    ),
}
"""Per upstream table (a ``Tables`` field), the columns of the contract."""

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "links": ("source_table", "source_pk"),
    "origin": ("person_key",),
}
"""Unique keys the matcher's ``on conflict`` needs (columns in any order, not deferrable)."""

RECOMMENDED_INDEXES: dict[str, tuple[tuple[str, str], ...]] = {
    "leads": (("created_at", "the backlog's oldest-first order and the daily metrics"),),
    "claims": (("lead_id", "the backlog's claim lookups"),),
    "links": (("person_key", "ORIGIN_MISSING and `kpi-red repair-origin`"),),
}
"""Indexes that only speed things up: (leading column, what uses it)."""

ATTEMPTS_COLUMNS: tuple[Column, ...] = (
    Column("attempt_id", "bigint"),
    Column("run_id", TEXT),
    Column("lead_source_pk", TEXT),
    Column("outcome", TEXT),
    Column("fail_reason", TEXT),
    Column("match_rule", TEXT),
    Column("match_score", REAL),
    Column("person_key", TEXT),
    Column("evidence", "jsonb"),
    Column("identifiers_hash", TEXT),
    Column("started_at", TIMESTAMPTZ),
    Column("attempted_at", TIMESTAMPTZ),
    Column("written_xact_id", "xid8"),
)
"""The project's attempts log (``matcher/store/sql/init.sql``)."""

SQL_TYPES = {TEXT: "text", TIMESTAMPTZ: "timestamptz", REAL: "real"}


def accepts(contract_type: str, actual: str) -> bool:
    """Whether a column of type ``actual`` (``format_type``) meets ``contract_type``."""
    return actual in TYPE_FAMILIES.get(contract_type, frozenset({contract_type}))
