{#- Live: the stored fold of the last build, with the leads attempted since taken from
    `int_lead_attempts__recent` instead. Both come from `fold_lead_attempts`, so this
    equals folding the whole log now. -#}

with

stored as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

recent as (
    select * from {{ ref('int_lead_attempts__recent') }}
),

final as (
    select stored.*
    from stored
    where
        not exists (
            select 1 from recent
            where recent.lead_source_pk = stored.lead_source_pk
        )
    union all
    select recent.*
    from recent
)

select * from final
