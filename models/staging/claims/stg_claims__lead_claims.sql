with

claims as (
    select * from {{ source('claims', 'lead_claims') }}
),

final as (
    select
        claim_id::text as claim_id,
        lead_id::text as lead_id,
        claimed_at::timestamptz as claimed_at
    from claims
)

select * from final
