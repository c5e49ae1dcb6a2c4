{{ config(materialized='view_in_place') }}

{#- The red backlog now, by cause: each reason bucket with its leads, its share, its
    oldest lead, and what drains it (a person's review, the upstream data, the registry,
    or the next matcher run). Live, like the backlog view it reads. -#}

with

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

by_cause as (
    select
        reason_bucket,
        count(*) as leads,
        max(age_days) as oldest_age_days,
        min(lead_created_at) as oldest_lead_created_at
    from backlog
    group by reason_bucket
),

final as (
    select
        reason_bucket::text as reason_bucket,
        leads::bigint as leads,
        round(100.0 * leads / sum(leads) over (), 1)::numeric(5, 1) as share_pct,
        oldest_age_days::integer as oldest_age_days,
        oldest_lead_created_at,
        (
            case
                when reason_bucket in ('conflict', 'low_confidence', 'ambiguous', 'name_mismatch')
                    then 'review'
                when reason_bucket = 'missing_identifiers' then 'upstream data'
                when reason_bucket = 'no_match' then 'wait for the registry'
                else 'the next matcher run'
            end
        )::text as fixed_by,
        (
            reason_bucket in ('conflict', 'low_confidence', 'ambiguous', 'name_mismatch')
        ) as is_reviewable
    from by_cause
)

select * from final
