{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='lead_source_pk',
    on_schema_change='append_new_columns',
    indexes=[
        {'columns': ['status', 'next_attempt_at']},
        {'columns': ['status', 'last_attempt_at']},
        {'columns': ['loaded_at']},
    ],
    post_hook=[
        "{{ delete_stale_queue_rows(this) }}",
        '{{ analyze_when_changed(this) }}',
    ],
) }}

-- depends_on: {{ ref('int_lead_identifiers__stored') }}
-- depends_on: {{ ref('stg_kpi_red__match_attempts') }}

{%- set folded_columns = [
    'attempt_count', 'last_attempt_at', 'last_outcome', 'last_fail_reason',
    'last_match_rule', 'last_person_key', 'retry_at', 'last_identifiers_hash',
] %}

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

leads as (
    select
        lead_id,
        identifiers_hash
    from {{ ref('stg_cabinet__leads') }}
),

-- the attempts fold (`int_lead_attempts`) as its two parts, each joined on its key
-- (`current_attempts_fold`): the view's union cannot be probed per lead, so it was folded
-- whole for a few changed leads
stored_attempts as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

recent_attempts as (
    select * from {{ ref('int_lead_attempts__recent') }}
),

{% if is_incremental() and relation_has_column(this, 'loaded_at') %}

{%- set loaded_since = stored_watermark_literal(this, 'loaded_at') %}
{%- set folded_through = query_literal(
    "select coalesce(max(max_attempt_id), 0) from " ~ ref('int_lead_attempts__stored'),
    'bigint'
) %}

-- what dbt rewrote after this table's last write, and the leads attempted since the
-- stored fold (those of `int_lead_attempts__recent`), each read straight from its table
-- through an index. Both bounds are literals: PostgreSQL counts these few leads right,
-- instead of a third of each table, and joins the rest to them alone.
changed_leads as (
    select changed_intervals.lead_source_pk
    from {{ ref('int_backlog_intervals') }} as changed_intervals
    where changed_intervals.loaded_at > {{ loaded_since }}
    union
    select lead_keys.lead_id
    from {{ ref('int_lead_identifiers__stored') }} as lead_keys
    where lead_keys.loaded_at > {{ loaded_since }}
    union
    select folds.lead_source_pk
    from {{ ref('int_lead_attempts__stored') }} as folds
    where folds.loaded_at > {{ loaded_since }}
    union
    select attempts.lead_source_pk
    from {{ ref('stg_kpi_red__match_attempts') }} as attempts
    where attempts.attempt_id > {{ folded_through }}
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

-- noqa: disable=LT02
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
        recent_attempts.lead_source_pk is not null
        or stored_attempts.lead_source_pk is not null as has_attempts,
        {%- for column in folded_columns %}
        {{ current_attempts_fold(column) }} as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from per_lead
    inner join current_intervals
        on current_intervals.lead_source_pk = per_lead.lead_source_pk
    inner join leads
        on leads.lead_id = per_lead.lead_source_pk
    left join recent_attempts
        on recent_attempts.lead_source_pk = per_lead.lead_source_pk
    left join stored_attempts
        on stored_attempts.lead_source_pk = per_lead.lead_source_pk
),
-- noqa: enable=LT02

pending as (
    select
        joined.*,
        {{ is_pending_match(
            'has_attempts', 'last_identifiers_hash', 'identifiers_hash', 'last_outcome'
        ) }} as is_pending
    from joined
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
    from pending
)

select * from final
