{#- Live: the fold (`fold_lead_attempts`) of the leads attempted since the last build,
    i.e. with an attempt after the highest `attempt_id` in
    `int_lead_attempts__stored`, each from all of its attempts. Right after a
    build it is empty; two index range scans find it. -#}

with

stored as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

-- each import is read once, so PostgreSQL inlines it and uses the log's indexes
new_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
    where {{ attempted_since_build('attempt_id', 'stored') }}
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

recent_attempts as (
    select attempts.*
    from attempts
    where attempts.lead_source_pk in (
        select new_attempts.lead_source_pk from new_attempts
    )
),

folded as (
    {{ fold_lead_attempts('recent_attempts') }}
),

-- the columns of the stored fold: these rows were never stored
final as (
    select
        folded.*,
        null::timestamptz as loaded_at,
        null::xid8 as loaded_xmin
    from folded
)

select * from final
