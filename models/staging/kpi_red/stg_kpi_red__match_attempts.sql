{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it, so
    filters and joins reach the source's indexes and unread columns are never computed
    (a view with a WITH clause is planned apart, as a whole). `written_xact_id` is null
    until `kpi-red init` (run by every `kpi-red cycle`) has added it to a log created
    before it. -#}

{%- set xact_column = 'written_xact_id'
    if relation_has_column(source('kpi_red', 'match_attempts'), 'written_xact_id') else 'null' %}

select
    attempt_id::bigint as attempt_id,
    run_id::text as run_id,
    lead_source_pk::text as lead_source_pk,
    outcome::text as outcome,
    outcome = 'matched' as is_matched,
    fail_reason::text as fail_reason,
    match_rule::text as match_rule,
    match_score::real as match_score,
    person_key::text as person_key,
    evidence::jsonb as evidence,
    identifiers_hash::text as identifiers_hash,
    started_at::timestamptz as started_at,
    attempted_at::timestamptz as attempted_at,
    {{ xact_column }}::xid8 as written_xact_id
from {{ source('kpi_red', 'match_attempts') }}
