{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk'], 'unique': true},
        {'columns': ['max_attempt_id']},
        {'columns': ['last_attempt_at']},
    ],
    post_hook=['{{ analyze_when_changed(this) }}'],
) }}

{#- The attempts log folded per lead as of the build (`fold_lead_attempts`). An
    incremental run re-folds only the leads with an attempt after the stored
    `max(max_attempt_id)`, or at or after the stored `max(last_attempt_at)` (future-dated
    rows ignored) minus `queue_lookback_minutes` and above the lead's own stored
    `max_attempt_id` (a matcher transaction that committed after the last build began),
    each from all of its attempts (the `(lead_source_pk, attempted_at)` index of the
    log). The bounds are index reads. `loaded_at` (the writing run's transaction time)
    tells the queue which leads were re-folded since its own last run. -#}

with

{% if is_incremental() -%}

-- the leads with an attempt not folded yet: the two cases are a `union`, so each is
-- planned on its own (the log's primary key; a hash anti-join for the look-back, where
-- one `or` made it an index probe per attempt in the window)
new_attempts as (
    select attempts.lead_source_pk
    from {{ ref('stg_kpi_red__match_attempts') }} as attempts
    where
        attempts.attempt_id > (
            select coalesce(max(stored.max_attempt_id), 0) from {{ this }} as stored
        )
    union
    select attempts.lead_source_pk
    from {{ ref('stg_kpi_red__match_attempts') }} as attempts
    where
        attempts.attempted_at >= {{ stored_watermark(this, 'last_attempt_at') }}
        - {{ queue_lookback() }}
        -- a late commit, not folded yet (one matcher at a time holds a lead, so a
        -- lead's attempts commit in attempt_id order)
        and not exists (
            select 1 from {{ this }} as stored
            where
                stored.lead_source_pk = attempts.lead_source_pk
                and stored.max_attempt_id >= attempts.attempt_id
        )
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

scoped_attempts as (
    select attempts.*
    from attempts
    where attempts.lead_source_pk in (
        select new_attempts.lead_source_pk from new_attempts
    )
),

{%- else %}

scoped_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

{%- endif %}

folded as (
    {{ fold_lead_attempts('scoped_attempts') }}
),

final as (
    select
        folded.*,
        now() as loaded_at
    from folded
)

select * from final
