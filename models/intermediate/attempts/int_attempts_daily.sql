{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='metric_date',
    on_schema_change='append_new_columns',
) }}

{%- set fail_reasons = fail_reasons() %}

{#- The attempts log counted per day (in `metrics_time_zone`): attempts, matched, failed,
    failed per reason, and the day's most frequent fail reason (ties by name). The log is
    the matcher's own, append-only, each row stamped when its batch is written and
    committed a moment later, so an incremental run recounts only the days from the one of
    the newest stored attempt minus `metrics_lookback_days` (future-dated rows ignored
    for that watermark). -#}

with

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
    {% if is_incremental() -%}
    where
        attempted_at >= {{ local_day_start(
            local_date(stored_watermark(this, 'last_attempted_at'))
            ~ ' - ' ~ sql_integer('metrics_lookback_days', var('metrics_lookback_days'))
        ) }}
    {%- endif %}
),

by_reason as (
    select
        {{ local_date('attempted_at') }} as metric_date,
        fail_reason,
        count(*) as attempts,
        max(attempted_at) as last_attempted_at
    from attempts
    group by {{ local_date('attempted_at') }}, fail_reason
),

final as (
    select
        metric_date,
        sum(attempts)::bigint as attempts,
        coalesce(sum(attempts) filter (where fail_reason is null), 0)::bigint as matched_attempts,
        coalesce(sum(attempts) filter (where fail_reason is not null), 0)::bigint
            as failed_attempts,
        {% for reason in fail_reasons -%}
        coalesce(sum(attempts) filter (where fail_reason = '{{ reason }}'), 0)::bigint
            as failed_{{ reason }},
        {% endfor -%}
        (
            array_agg(fail_reason order by attempts desc, fail_reason asc)
            filter (where fail_reason is not null)
        )[1] as top_fail_reason,
        max(last_attempted_at) as last_attempted_at
    from by_reason
    group by metric_date
)

select * from final
