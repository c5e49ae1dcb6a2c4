{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['lead_source_pk'], 'unique': true},
        {'columns': ['max_attempt_id']},
        {'columns': ['last_attempt_at']},
        {'columns': ['loaded_at']},
        {'columns': ['loaded_xmin']},
    ],
    post_hook=['{{ analyze_when_changed(this) }}'],
) }}

{#- the staging view it reads, not the log: a view built before the log gained the column
    reads it as null until rebuilt (a selective run right after `kpi-red init`) -#}
{%- set logs_xact = view_reads_column(
    ref('stg_kpi_red__match_attempts'), source('kpi_red', 'match_attempts'), 'written_xact_id'
) %}
{%- set stored_xmin = query_literal('select max(loaded_xmin)::text from ' ~ this, 'xid8')
    if is_incremental() and logs_xact and relation_has_column(this, 'loaded_xmin')
    else 'null::xid8' %}

{#- The attempts log folded per lead as of the build (`fold_lead_attempts`). An
    incremental run re-folds only the leads with an attempt after the stored
    `max(max_attempt_id)`, or written by a transaction that was still running when the
    last build that wrote this table took its snapshot, or began after (`written_xact_id`
    at or above that snapshot's xmin, stored as `loaded_xmin`: every transaction below it
    had ended, so its attempts were folded then), each lead from all of its attempts (the
    `(lead_source_pk, attempt_id)` index of the log). The bounds are index reads, and a
    drain an hour before is never re-read. Until the log has `written_xact_id` and a
    build stored its xmin, a late commit is looked for by time instead: at or after the
    stored `max(last_attempt_at)` (future-dated rows ignored) minus
    `queue_lookback_minutes`, above the lead's own stored `max_attempt_id`. `loaded_at`
    (the writing run's transaction time) tells the queue which leads were re-folded since
    its own last run. -#}

with

{% if is_incremental() -%}

-- the leads with an attempt not folded yet: the two cases are a `union`, so each is
-- planned on its own (the log's primary key, then its `written_xact_id` index)
new_attempts as (
    select attempts.lead_source_pk
    from {{ ref('stg_kpi_red__match_attempts') }} as attempts
    where
        attempts.attempt_id > (
            select coalesce(max(stored.max_attempt_id), 0) from {{ this }} as stored
        )
    union
    {%- if stored_xmin != 'null::xid8' %}
    -- written by a transaction not ended at the last build's snapshot
    select attempts.lead_source_pk
    from {{ ref('stg_kpi_red__match_attempts') }} as attempts
    where attempts.written_xact_id >= {{ stored_xmin }}
    {%- else %}
    -- (a hash anti-join for the look-back, where one `or` made it an index probe per
    -- attempt in the window)
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
    {%- endif %}
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

-- every attempt of those leads: `= any(array(...))` is planned as a few values, so the
-- log's `(lead_source_pk, attempt_id)` index is walked for them. The `in` it replaces
-- hashed them and read the whole log: at `large`, 5,100 leads of an hour 230 ms -> 35 ms;
-- the 375,000 of a drain 1.59 s -> 1.71 s.
scoped_attempts as (
    select attempts.*
    from attempts
    where attempts.lead_source_pk = any(array(
        select new_attempts.lead_source_pk from new_attempts
    ))
),

{%- else %}

scoped_attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

{%- endif %}

folded as (
    {{ fold_lead_attempts('scoped_attempts') }}
),

-- the xmin of this statement's snapshot, the one the fold was read with (null until the
-- log has `written_xact_id`)
final as (
    select
        folded.*,
        now() as loaded_at,
        {{ 'pg_snapshot_xmin(pg_current_snapshot())' if logs_xact else 'null::xid8' }} as loaded_xmin
    from folded
)

select * from final
