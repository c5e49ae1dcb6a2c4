-- no lead is both in the backlog and linked or claimed
with

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
),

final as (
    select
        backlog.lead_source_pk,
        links.person_key,
        claims.claim_id
    from backlog
    left join links
        on links.source_pk = backlog.lead_source_pk
    left join claims
        on claims.lead_id = backlog.lead_source_pk
    where links.source_pk is not null or claims.claim_id is not null
)

select * from final
