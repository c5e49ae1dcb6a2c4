{#- No WITH clause: PostgreSQL inlines a plain view into the query that reads it, so
    filters and joins reach the source's indexes and unread columns are never computed
    (a view with a WITH clause is planned apart, as a whole). -#}

select
    claim_id::text as claim_id,
    lead_id::text as lead_id,
    claimed_at::timestamptz as claimed_at
from {{ source('claims', 'lead_claims') }} as claims
