"""The bound: ONE SQL statement doing the matcher's exact-key work for the whole backlog.

It classifies every eligible lead exactly as ``matcher.match.classify`` does
(missing identifiers, no match, conflict, ambiguous; a document or two agreeing keys
match), treats a lone phone or email as matched (SQL cannot run the rapidfuzz name
guard), and writes the links, the missing origin rows and one attempts-log row per lead
with its evidence. No network round trips, no Python: the fastest this work can be on
this server, which is what the matcher is measured against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from bench.database import BenchDatabase
from matcher.settings import Settings

BOUND = """
with

leads as (
    select
        backlog.lead_source_pk,
        backlog.identifiers_hash,
        backlog.lead_created_at as created_at,
        backlog.document_key,
        backlog.phone_key,
        backlog.email_key
    from {backlog} as backlog
    where backlog.is_eligible
),

lead_keys as (
    select
        leads.lead_source_pk,
        key_values.key_type,
        key_values.key_value
    from leads
    cross join lateral (
        values
            ('document', leads.document_key),
            ('phone', leads.phone_key),
            ('email', leads.email_key)
    ) as key_values (key_type, key_value)
    where key_values.key_value is not null
),

hits as (
    select distinct
        lead_keys.lead_source_pk,
        lead_keys.key_type,
        persons.person_key
    from lead_keys
    inner join {person_keys} as persons
        on
            persons.key_type = lead_keys.key_type
            and persons.key_value = lead_keys.key_value
),

key_fanout as (
    select
        lead_source_pk,
        key_type,
        count(*) as person_count,
        array_agg(person_key order by person_key) as person_keys
    from hits
    group by lead_source_pk, key_type
),

lead_fanout as (
    select
        lead_source_pk,
        count(*) as pointing_keys,
        jsonb_object_agg(key_type, jsonb_build_object('person_keys', person_keys)) as evidence
    from key_fanout
    group by lead_source_pk
),

person_support as (
    select
        hits.lead_source_pk,
        hits.person_key,
        count(*) as supporting_keys,
        count(*) filter (where key_fanout.person_count = 1) as agreeing_keys,
        bool_or(hits.key_type = 'document' and key_fanout.person_count = 1) as has_document,
        string_agg(
            hits.key_type,
            '+' order by array_position(array['document', 'phone', 'email'], hits.key_type)
        ) filter (where key_fanout.person_count = 1) as agreeing_rule
    from hits
    inner join key_fanout
        on
            key_fanout.lead_source_pk = hits.lead_source_pk
            and key_fanout.key_type = hits.key_type
    group by hits.lead_source_pk, hits.person_key
),

common as (
    select
        person_support.lead_source_pk,
        count(*) as common_persons,
        min(person_support.person_key) as person_key,
        max(person_support.agreeing_keys) as agreeing_keys,
        bool_or(person_support.has_document) as has_document,
        max(person_support.agreeing_rule) as agreeing_rule
    from person_support
    inner join lead_fanout
        on lead_fanout.lead_source_pk = person_support.lead_source_pk
    where person_support.supporting_keys = lead_fanout.pointing_keys
    group by person_support.lead_source_pk
),

classified as (
    select
        leads.lead_source_pk,
        leads.identifiers_hash,
        leads.created_at,
        common.person_key,
        coalesce(lead_fanout.evidence, '{{}}'::jsonb) as evidence,
        case
            when coalesce(leads.document_key, leads.phone_key, leads.email_key) is null
                then 'missing_identifiers'
            when lead_fanout.lead_source_pk is null then 'no_match'
            when common.lead_source_pk is null then 'conflict'
            when common.common_persons > 1 or common.agreeing_keys = 0 then 'ambiguous'
        end as fail_reason,
        case
            when common.has_document or common.agreeing_keys >= 2 then common.agreeing_rule
            else common.agreeing_rule || '+name'
        end as match_rule
    from leads
    left join lead_fanout
        on lead_fanout.lead_source_pk = leads.lead_source_pk
    left join common
        on common.lead_source_pk = leads.lead_source_pk
),

decided as materialized (
    select
        lead_source_pk,
        identifiers_hash,
        created_at,
        evidence,
        fail_reason,
        case when fail_reason is null then person_key end as person_key,
        case when fail_reason is null then match_rule end as match_rule,
        case when fail_reason is null then 'matched' else 'failed' end as outcome
    from classified
),

new_links as (
    insert into {links} (
        source_table, source_pk, person_key, match_rule, match_score, linked_at, linked_by,
        run_id
    )
    select
        %(source_table)s,
        lead_source_pk,
        person_key,
        match_rule,
        100,
        now(),
        'kpi-red-bound',
        %(run_id)s
    from decided
    where outcome = 'matched'
    on conflict (source_table, source_pk) do nothing
    returning 1
),

new_origins as (
    insert into {origin} (
        person_key, origin_tag, origin_source_pk, origin_created_at, recorded_at
    )
    select distinct on (person_key)
        person_key,
        'cabinet_lead',
        lead_source_pk,
        created_at,
        now()
    from decided
    where outcome = 'matched'
    order by person_key asc, created_at asc, lead_source_pk asc
    on conflict (person_key) do nothing
    returning 1
),

new_attempts as (
    insert into {attempts} (
        run_id, lead_source_pk, outcome, fail_reason, match_rule, match_score,
        person_key, evidence, identifiers_hash, started_at
    )
    select
        %(run_id)s,
        lead_source_pk,
        outcome,
        fail_reason,
        match_rule,
        case when outcome = 'matched' then 100 end,
        person_key,
        evidence,
        identifiers_hash,
        now()
    from decided
    returning outcome
)

select
    (select count(*) from new_attempts) as leads,
    (select count(*) from new_attempts where outcome = 'matched') as matched,
    (select count(*) from new_links) as links,
    (select count(*) from new_origins) as origins
"""


@dataclass(frozen=True)
class BoundResult:
    leads: int
    matched: int
    links: int
    origins: int
    seconds: float

    @property
    def leads_per_s(self) -> float:
        return self.leads / self.seconds if self.seconds > 0 else 0.0


def statement(settings: Settings) -> sql.Composed:
    tables = settings.tables
    return sql.SQL(BOUND).format(
        backlog=sql.Identifier("ops", "v_cabinet_kpi_red_backlog"),
        person_keys=sql.Identifier("kpi_red_interface", "person_keys"),
        links=sql.Identifier(*tables.links),
        origin=sql.Identifier(*tables.origin),
        attempts=sql.Identifier(*tables.attempts),
    )


def prefer_hash_joins(conn: psycopg.Connection) -> None:
    """The bound at its fastest, so the ratios are conservative: with fresh statistics
    the planner joins the leads' keys to the registry by a merge join that sorts every
    registry key (medium: 4.5 s); without merge joins it hashes them (2.6 s)."""
    conn.execute("set enable_mergejoin = off")


def run(database: BenchDatabase, settings: Settings, *, explain: bool = False) -> BoundResult:
    """Run the statement and commit (the commit is timed too, as the matcher's are)."""
    params = {"source_table": settings.tables.lead_source_table, "run_id": "bench-bound"}
    with database.connect() as conn:
        prefer_hash_joins(conn)
        started = time.perf_counter()
        row = conn.execute(statement(settings), params).fetchone()
        conn.commit()
        seconds = time.perf_counter() - started
    assert row is not None
    return BoundResult(
        leads=int(row[0]),
        matched=int(row[1]),
        links=int(row[2]),
        origins=int(row[3]),
        seconds=seconds,
    )


def explain(database: BenchDatabase, settings: Settings) -> str:
    """The bound's plan with actual times; rolled back."""
    params = {"source_table": settings.tables.lead_source_table, "run_id": "bench-bound"}
    composed = sql.SQL("explain (analyze, buffers, format text) ") + statement(settings)
    with database.connect() as conn:
        prefer_hash_joins(conn)
        try:
            rows = conn.execute(composed, params).fetchall()
        finally:
            conn.rollback()
    return "\n".join(str(row[0]) for row in rows)
