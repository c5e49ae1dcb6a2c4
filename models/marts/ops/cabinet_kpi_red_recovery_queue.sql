{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['status', 'next_attempt_at']},
        {'columns': ['changed_at']},
    ],
    post_hook=['analyze {{ this }}'],
) }}

-- depends_on: {{ ref('stg_kpi_red__match_attempts') }}
-- depends_on: {{ ref('stg_canon__identity_links') }}
-- depends_on: {{ ref('stg_claims__lead_claims') }}

{#- Late-arriving rows (a matcher transaction that committed after a build had started)
    can carry timestamps slightly older than the table's watermark; look back this far. -#}
{%- set lookback = queue_lookback() %}

with

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

-- only the columns used: the CTE is read twice, so PostgreSQL materializes it, and the
-- lead's normalized keys are never needed here
leads as (
    select
        lead_id,
        changed_at,
        identifiers_hash
    from {{ ref('stg_cabinet__leads') }}
),

attempts_folded as (
    select * from {{ ref('int_lead_attempts_folded') }}
),

{% if is_incremental() %}

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
),

existing as (
    select * from {{ this }}
),

watermark as (
    -- a future-dated source row must not hide the rows that come after it
    select
        {{ stored_watermark(this, 'changed_at') }} - {{ lookback }} as changed_since
),

-- only the leads whose inputs may have changed since the last run are rebuilt
changed_leads as (
    select leads.lead_id as lead_source_pk
    from leads
    cross join watermark
    where leads.changed_at >= watermark.changed_since
    union
    select attempts.lead_source_pk
    from attempts
    cross join watermark
    where attempts.attempted_at >= watermark.changed_since
    union
    select links.source_pk
    from links
    cross join watermark
    where links.linked_at >= watermark.changed_since
    union
    select claims.lead_id
    from claims
    cross join watermark
    where claims.claimed_at >= watermark.changed_since
    union
    -- new to the queue, whatever their timestamps say
    select intervals.lead_source_pk
    from intervals
    where
        not exists (
            select 1 from existing
            where existing.lead_source_pk = intervals.lead_source_pk
        )
    union
    -- the stored exit no longer matches the intervals (a link removed, a backdated link
    -- or claim)
    select existing.lead_source_pk
    from existing
    left join intervals
        on
            intervals.lead_source_pk = existing.lead_source_pk
            and intervals.is_open
    where existing.is_in_backlog <> (intervals.lead_source_pk is not null)
),

scoped_intervals as (
    select intervals.*
    from intervals
    inner join changed_leads
        on changed_leads.lead_source_pk = intervals.lead_source_pk
),

{% else %}

scoped_intervals as (
    select * from intervals
),

{% endif %}

per_lead as (
    select
        lead_source_pk,
        min(entered_at) as entered_at,
        max(entered_at) as last_entered_at,
        count(*) as interval_count,
        bool_or(is_open) as is_in_backlog
    from scoped_intervals
    group by lead_source_pk
),

-- the latest interval of each lead (entered_at is unique per lead)
current_intervals as (
    select distinct on (lead_source_pk)
        lead_source_pk,
        left_at,
        exit_kind
    from scoped_intervals
    order by lead_source_pk asc, entered_at desc
),

joined as (
    select
        per_lead.lead_source_pk,
        per_lead.entered_at,
        per_lead.last_entered_at,
        per_lead.interval_count,
        per_lead.is_in_backlog,
        current_intervals.left_at,
        current_intervals.exit_kind,
        leads.changed_at as lead_changed_at,
        leads.identifiers_hash,
        attempts_folded.attempt_count,
        attempts_folded.last_attempt_at,
        attempts_folded.last_outcome,
        attempts_folded.last_fail_reason,
        attempts_folded.last_match_rule,
        attempts_folded.last_person_key,
        attempts_folded.retry_at,
        {{ is_pending_match(
            'attempts_folded.lead_source_pk is not null',
            'attempts_folded.last_identifiers_hash',
            'leads.identifiers_hash',
            'attempts_folded.last_outcome'
        ) }} as is_pending
    from per_lead
    inner join current_intervals
        on current_intervals.lead_source_pk = per_lead.lead_source_pk
    inner join leads
        on leads.lead_id = per_lead.lead_source_pk
    left join attempts_folded
        on attempts_folded.lead_source_pk = per_lead.lead_source_pk
),

final as (
    select
        lead_source_pk::text as lead_source_pk,
        entered_at,
        (
            case
                when not is_in_backlog and exit_kind = 'matched' then 'matched'
                when not is_in_backlog then 'resolved_elsewhere'
                when is_pending then 'pending'
                else 'failed'
            end
        )::text as status,
        (
            case
                when is_in_backlog and not is_pending then last_fail_reason
            end
        )::text as fail_reason,
        coalesce(attempt_count, 0)::integer as attempt_count,
        last_attempt_at,
        (
            case
                when not is_in_backlog then null
                when last_attempt_at is null then last_entered_at
                when is_pending then greatest(last_attempt_at, last_entered_at)
                else retry_at
            end
        )::timestamptz as next_attempt_at,
        is_in_backlog,
        last_entered_at,
        (case when not is_in_backlog then left_at end)::timestamptz as left_at,
        (case when not is_in_backlog then exit_kind end)::text as exit_kind,
        interval_count::integer as interval_count,
        (case when not is_in_backlog and exit_kind = 'matched' then last_person_key end)::text
            as matched_person_key,
        (case when not is_in_backlog and exit_kind = 'matched' then last_match_rule end)::text
            as match_rule,
        identifiers_hash,
        greatest(
            lead_changed_at,
            last_attempt_at,
            last_entered_at,
            case when not is_in_backlog then left_at end
        ) as changed_at
    from joined
)

select * from final
