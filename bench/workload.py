"""Set-based changes the benchmark makes, and the panel's read."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from bench.database import BenchDatabase
from matcher.settings import Settings

NEW_LEADS = """
with

existing as (
    select * from {leads}
),

sampled as (
    select
        existing.*,
        row_number() over (order by md5(existing.lead_id || %(seed)s)) as sample_rank
    from existing
),

final as (
    select
        'bench-' || %(tag)s || '-' || sample_rank as lead_id,
        now() - (sample_rank %% 3600) * interval '1 second' as created_at,
        null::timestamptz as updated_at,
        full_name,
        phone,
        document_type,
        document_number,
        email
    from sampled
    where sample_rank <= %(count)s
)

insert into {leads} (
    lead_id, created_at, updated_at, full_name, phone, document_type, document_number, email
)
select * from final
"""


def share_of_rows(conn: Any, table: sql.Identifier, share: float) -> int:
    """``share`` of ``table``'s rows, at least one."""
    total = conn.execute(sql.SQL("select count(*) from {}").format(table)).fetchone()
    return max(1, round((total[0] if total else 0) * share))


def add_new_leads(database: BenchDatabase, settings: Settings, *, share: float, seed: int) -> int:
    """Add ``share`` of the current leads as new ones arriving within the last hour.

    One statement. The new leads copy the identifiers of a seeded random sample of the
    existing leads, so they carry the same mix as the generator (matchable, missing
    identifiers, conflicts, junk, messy formats): a person who comes back.
    """
    leads = sql.Identifier(*settings.tables.leads)
    with database.connect() as conn:
        count = share_of_rows(conn, leads, share)
        cursor = conn.execute(
            sql.SQL(NEW_LEADS).format(leads=leads),
            {"seed": str(seed), "count": count, "tag": str(seed)},
        )
        inserted = cursor.rowcount
        conn.execute(sql.SQL("analyze {}").format(leads))
    return inserted


EDIT_REGISTRY_PHONES = """
with

sampled as (
    select person_key
    from {registry}
    order by md5(person_key || %(seed)s)
    limit %(count)s
)

update {registry} as registry
set
    phone = '9' || lpad((abs(hashtextextended(registry.person_key || %(seed)s, 0))
        %% 100000000)::text, 8, '0'),
    updated_at = now()
from sampled
where registry.person_key = sampled.person_key
"""


def edit_registry_phones(
    database: BenchDatabase, settings: Settings, *, share: float, seed: int
) -> int:
    """Give ``share`` of the registry persons a new mobile phone (a seeded random one, as
    a CRM sync corrects numbers every hour), moving ``updated_at``. One statement; returns
    the persons edited."""
    registry = sql.Identifier(*settings.tables.registry)
    with database.connect() as conn:
        count = share_of_rows(conn, registry, share)
        cursor = conn.execute(
            sql.SQL(EDIT_REGISTRY_PHONES).format(registry=registry),
            {"seed": str(seed), "count": count},
        )
        return cursor.rowcount


def add_registry_person(database: BenchDatabase, settings: Settings, *, seed: int) -> str:
    """One new registry person, as another system adds people every hour: an email no lead
    and no person has (so it links nobody), every column set. Returns its key."""
    registry = sql.Identifier(*settings.tables.registry)
    person_key = f"bench-new-person-{seed}"
    with database.connect() as conn:
        conn.execute(
            sql.SQL(
                "insert into {} (person_key, full_name, phone, document_type, document_number,"
                " email, created_at, updated_at)"
                " values (%s, 'Nueva Persona Bench', null, null, null, %s, now(), now())"
            ).format(registry),
            (person_key, f"{person_key}@bench.invalid"),
        )
    return person_key


def read_panel(database: BenchDatabase, settings: Settings, *, live: bool = False) -> Any:
    """What ``kpi-red metrics --json`` (``--live``) reads, with the same function."""
    from matcher.store import panel as store_panel

    time_zone = str(settings.vars.get("metrics_time_zone", "America/Lima"))
    return store_panel.read_panel_rows(database.conninfo, days=7, time_zone=time_zone, live=live)


def counts(database: BenchDatabase, settings: Settings) -> dict[str, int]:
    tables = settings.tables
    with database.connect() as conn:

        def count(name: tuple[str, str], eligible_only: bool = False) -> int:
            template = (
                "select count(*) from {} where is_eligible"
                if eligible_only
                else ("select count(*) from {}")
            )
            statement = sql.SQL(template).format(sql.Identifier(*name))
            row = conn.execute(statement).fetchone()
            return int(row[0]) if row else 0

        return {
            "leads": count(tables.leads),
            "persons": count(tables.registry),
            "backlog": count(("ops", "v_cabinet_kpi_red_backlog")),
            "eligible": count(("ops", "v_cabinet_kpi_red_backlog"), eligible_only=True),
            "links": count(tables.links),
            "attempts": count(tables.attempts),
        }


def counts_sources(database: BenchDatabase, settings: Settings) -> dict[str, int]:
    """Leads and registry persons (no dbt model needed)."""
    tables = settings.tables
    with database.connect() as conn:
        leads = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(*tables.leads))
        ).fetchone()
        persons = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(*tables.registry))
        ).fetchone()
    return {"leads": int(leads[0]) if leads else 0, "persons": int(persons[0]) if persons else 0}


def server_facts(database: BenchDatabase) -> dict[str, str]:
    """The server settings that shape the figures."""
    names = (
        "server_version",
        "shared_buffers",
        "work_mem",
        "synchronous_commit",
        "max_parallel_workers_per_gather",
        "jit",
    )
    with database.connect() as conn:
        return {name: str(conn.execute(f"show {name}").fetchone()[0]) for name in names}  # type: ignore[index]


PANEL_PARTS = {
    "metrics_rows": (
        "select * from ops.v_cabinet_kpi_red_recovery_metrics_daily"
        " where metric_date > (select max(metric_date)"
        " from ops.v_cabinet_kpi_red_recovery_metrics_daily) - 7"
        " order by metric_date"
    ),
    "backlog_count": "select count(*) from ops.v_cabinet_kpi_red_backlog",
}


def panel_parts(database: BenchDatabase) -> dict[str, Any]:
    """Each statement of the panel read alone (median of 5 ms), and the plan of the count."""
    from bench.measure import median_ms

    timings: dict[str, float] = {}
    with database.connect(autocommit=True) as conn:
        for name, statement in PANEL_PARTS.items():

            def read(statement: str = statement) -> None:
                conn.execute(statement).fetchall()

            timings[name] = round(median_ms(read)[0], 1)
        plan = conn.execute(
            "explain (analyze, buffers, format text) " + PANEL_PARTS["backlog_count"]
        ).fetchall()
    return {"ms": timings, "explain": "\n".join(str(row[0]) for row in plan)}
