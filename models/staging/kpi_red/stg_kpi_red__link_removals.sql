{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it. -#}

select
    removal_id::bigint as removal_id,
    lead_source_pk::text as lead_source_pk,
    person_key::text as person_key,
    removed_by::text as removed_by,
    db_user::text as db_user,
    reason::text as reason,
    is_forced::boolean as is_forced,
    removed_at::timestamptz as removed_at,
    source_table::text as source_table,
    match_rule::text as match_rule,
    match_score::real as match_score,
    linked_at::timestamptz as linked_at,
    linked_by::text as linked_by,
    link_run_id::text as link_run_id
from {{ source('kpi_red_removals', 'link_removals') }}
