{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it, so
    filters and joins reach the source's indexes and unread columns are never computed
    (a view with a WITH clause is planned apart, as a whole). -#}

select
    person_key::text as person_key,
    origin_tag::text as origin_tag,
    origin_source_pk::text as origin_source_pk,
    origin_created_at::timestamptz as origin_created_at,
    recorded_at::timestamptz as recorded_at
from {{ source('canon_origin', 'identity_origin') }}
