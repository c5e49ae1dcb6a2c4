{#- Live: the fold (`fold_lead_attempts`) of the leads attempted since the last build,
    i.e. with an attempt after the highest `attempt_id` in
    `int_lead_attempts__stored`, each from all of its attempts. Right after a
    build it is empty; an index range scan finds the leads, then an index probe per lead
    reads its attempts. -#}

with

stored as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

-- each import is read once, so PostgreSQL inlines it and uses the log's indexes
new_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
    where attempt_id > (
        select coalesce(max(stored.max_attempt_id), 0) from stored
    )
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

recent_leads as (
    select distinct new_attempts.lead_source_pk
    from new_attempts
),

-- each recent lead's attempts by the log's `(lead_source_pk, attempt_id)` index: `offset
-- 0` keeps the lateral a subquery (PostgreSQL cannot know how few leads the bound above
-- leaves and hashed the whole log for them). The lead comes from `recent_leads`, so a
-- reader's filter on it reaches the range scan above.
recent_attempts as (
    select
        recent_leads.lead_source_pk,
        lead_attempts.attempt_id,
        lead_attempts.attempted_at,
        lead_attempts.is_matched,
        lead_attempts.outcome,
        lead_attempts.fail_reason,
        lead_attempts.match_rule,
        lead_attempts.person_key,
        lead_attempts.identifiers_hash
    from recent_leads
    cross join lateral (
        select attempts.*
        from attempts
        where attempts.lead_source_pk = recent_leads.lead_source_pk
        order by attempts.attempt_id
        offset 0
    ) as lead_attempts
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
