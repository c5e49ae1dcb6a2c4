{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it, so
    filters and joins reach the source's indexes and unread columns are never computed
    (a view with a WITH clause is planned apart, as a whole). -#}

select
    source_table::text as source_table,
    source_pk::text as source_pk,
    person_key::text as person_key,
    match_rule::text as match_rule,
    match_score::real as match_score,
    linked_at::timestamptz as linked_at,
    linked_by::text as linked_by,
    run_id::text as run_id,
    source_table = {{ sql_literal(var("lead_source_table")) }} as is_lead_link
from {{ source('canon_links', 'identity_links') }}
