{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it. -#}

select
    decision_id::bigint as decision_id,
    lead_source_pk::text as lead_source_pk,
    person_key::text as person_key,
    decision::text as decision,
    decision = 'link' as is_link,
    reviewer::text as reviewer,
    db_user::text as db_user,
    note::text as note,
    identifiers_hash::text as identifiers_hash,
    decided_via::text as decided_via,
    run_id::text as run_id,
    decided_at::timestamptz as decided_at
from {{ source('kpi_red_reviews', 'review_decisions') }}
