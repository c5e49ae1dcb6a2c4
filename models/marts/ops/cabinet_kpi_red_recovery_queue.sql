{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['status', 'next_attempt_at']},
        {'columns': ['loaded_at']},
    ],
    post_hook=[
        "{{ delete_stale_queue_rows(this) }}",
        'analyze {{ this }}',
    ],
) }}

-- depends_on: {{ ref('int_lead_identifiers__stored') }}
-- depends_on: {{ ref('int_lead_attempts__stored') }}
-- depends_on: {{ ref('int_lead_attempts__recent') }}

{#- Incremental (delete+insert on `lead_source_pk`), exact by construction: a queue row
    is a function of the lead's intervals, its identifiers hash and its attempts fold, and
    a run rebuilds exactly the leads whose intervals (`int_backlog_intervals`), stored keys
    (`int_lead_identifiers__stored`, rewritten when the identifiers change) or stored fold
    (`int_lead_attempts__stored`) dbt rewrote after this table's own last write
    (their `loaded_at`: dbt's transaction times, so no late source row can slip past), and
    the leads attempted since that fold. The post-hook `delete_stale_queue_rows` drops the
    leads left with no interval (deleted upstream, or never red after all). #}

with

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

-- only the columns used: the CTE is read twice, so PostgreSQL materializes it, and the
-- lead's normalized keys are never needed here
leads as (
    select
        lead_id,
        identifiers_hash
    from {{ ref('stg_cabinet__leads') }}
),

attempts_folded as (
    select * from {{ ref('int_lead_attempts') }}
),

{% if is_incremental() and relation_has_column(this, 'loaded_at') %}

-- what dbt rewrote after this table's last write
watermark as (
    select coalesce(max(loaded_at), '-infinity') as loaded_since
    from {{ this }}
),

-- each read straight from its table, through its `loaded_at` index (read through the
-- `intervals` CTE, all of int_backlog_intervals was materialized and scanned)
changed_leads as (
    select changed_intervals.lead_source_pk
    from {{ ref('int_backlog_intervals') }} as changed_intervals
    cross join watermark
    where changed_intervals.loaded_at > watermark.loaded_since
    union
    select lead_keys.lead_id
    from {{ ref('int_lead_identifiers__stored') }} as lead_keys
    cross join watermark
    where lead_keys.loaded_at > watermark.loaded_since
    union
    select folds.lead_source_pk
    from {{ ref('int_lead_attempts__stored') }} as folds
    cross join watermark
    where folds.loaded_at > watermark.loaded_since
    union
    select recent.lead_source_pk
    from {{ ref('int_lead_attempts__recent') }} as recent
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
                when not is_in_backlog and exit_kind = 'reviewed' then 'reviewed'
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
            last_attempt_at,
            last_entered_at,
            case when not is_in_backlog then left_at end
        ) as changed_at,
        now() as loaded_at
    from joined
)

select * from final
