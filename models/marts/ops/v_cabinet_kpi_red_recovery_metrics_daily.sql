{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='metric_date',
    on_schema_change='append_new_columns',
) }}

{%- set fail_reasons = [
    'missing_identifiers', 'no_match', 'conflict', 'low_confidence', 'ambiguous', 'name_mismatch'
] %}

{#- a full build computes every day; an incremental one from the stored last day minus the
    lookback (late data), never before the first lead's day -#}
{%- set window_start_sql = "bounds.first_date" %}
{%- if is_incremental() %}
{%- set window_start_sql = "greatest(bounds.first_date, (select max(metric_date) from "
    ~ this ~ ") - " ~ sql_integer('metrics_lookback_days', var('metrics_lookback_days')) ~ ")" %}
{%- endif %}

with

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

bounds as (
    select
        {{ local_date('min(created_at)') }} as first_date,
        {{ local_date(as_of_ts()) }} as last_date,
        {{ as_of_ts() }} as as_of_at
    from leads
),

window_bounds as (
    select
        {{ window_start_sql }} as window_start_date,
        bounds.last_date,
        bounds.as_of_at
    from bounds
),

calendar as (
    select
        days.day::date as metric_date,
        window_bounds.as_of_at
    from window_bounds
    cross join lateral generate_series(
        window_bounds.window_start_date,
        window_bounds.last_date,
        interval '1 day'
    ) as days (day)
),

window_start as (
    select
        {{ local_day_start('window_start_date') }} as window_start_at,
        as_of_at
    from window_bounds
),

-- leads in the backlog just before the first day of the window
opening_backlog as (
    select count(intervals.lead_source_pk) as backlog
    from window_start
    left join intervals
        on
            intervals.entered_at < window_start.window_start_at
            and coalesce(intervals.left_at, 'infinity') >= window_start.window_start_at
),

windowed_entries as (
    select {{ local_date('intervals.entered_at') }} as metric_date
    from intervals
    inner join window_start
        on
            intervals.entered_at >= window_start.window_start_at
            and intervals.entered_at <= window_start.as_of_at
),

windowed_exits as (
    select
        {{ local_date('intervals.left_at') }} as metric_date,
        intervals.exit_kind
    from intervals
    inner join window_start
        on
            intervals.left_at >= window_start.window_start_at
            and intervals.left_at <= window_start.as_of_at
),

daily_entries as (
    select
        metric_date,
        count(*) as new_backlog_in
    from windowed_entries
    group by metric_date
),

daily_exits as (
    select
        metric_date,
        count(*) filter (where exit_kind = 'matched') as matched_out,
        count(*) filter (where exit_kind <> 'matched') as other_out
    from windowed_exits
    group by metric_date
),

windowed_attempts as (
    select
        {{ local_date('attempts.attempted_at') }} as metric_date,
        attempts.is_matched,
        attempts.fail_reason
    from attempts
    inner join window_start
        on
            attempts.attempted_at >= window_start.window_start_at
            and attempts.attempted_at <= window_start.as_of_at
),

daily_attempts as (
    select
        metric_date,
        count(*) as attempts,
        count(*) filter (where is_matched) as matched_attempts,
        {% for reason in fail_reasons -%}
        count(*) filter (where fail_reason = '{{ reason }}') as failed_{{ reason }},
        {% endfor -%}
        count(*) filter (where not is_matched) as failed_attempts
    from windowed_attempts
    group by metric_date
),

ranked_fail_reasons as (
    select
        metric_date,
        fail_reason,
        row_number() over (
            partition by metric_date
            order by count(*) desc, fail_reason asc
        ) as reason_rank
    from windowed_attempts
    where not is_matched
    group by metric_date, fail_reason
),

movements as (
    select
        calendar.metric_date,
        coalesce(daily_entries.new_backlog_in, 0) as new_backlog_in,
        coalesce(daily_exits.matched_out, 0) as matched_out,
        coalesce(daily_exits.other_out, 0) as other_out
    from calendar
    left join daily_entries
        on daily_entries.metric_date = calendar.metric_date
    left join daily_exits
        on daily_exits.metric_date = calendar.metric_date
),

running as (
    select
        movements.*,
        opening_backlog.backlog + coalesce(sum(
            movements.new_backlog_in - movements.matched_out - movements.other_out
        ) over (
            order by movements.metric_date
            rows between unbounded preceding and 1 preceding
        ), 0) as backlog_start
    from movements
    cross join opening_backlog
),

final as (
    select
        running.metric_date::date as metric_date,
        running.backlog_start::bigint as backlog_start,
        running.new_backlog_in::bigint as new_backlog_in,
        running.matched_out::bigint as matched_out,
        running.other_out::bigint as other_out,
        (running.backlog_start + running.new_backlog_in - running.matched_out - running.other_out)::bigint
            as backlog_end,
        (running.new_backlog_in - running.matched_out - running.other_out)::bigint as net_change,
        ranked_fail_reasons.fail_reason::text as top_fail_reason,
        coalesce(daily_attempts.attempts, 0)::bigint as attempts,
        coalesce(daily_attempts.matched_attempts, 0)::bigint as matched_attempts,
        coalesce(daily_attempts.failed_attempts, 0)::bigint as failed_attempts,
        {% for reason in fail_reasons -%}
        coalesce(daily_attempts.failed_{{ reason }}, 0)::bigint as failed_{{ reason }},
        {% endfor -%}
        coalesce(daily_attempts.failed_conflict, 0)::bigint as conflicts,
        (running.new_backlog_in > running.matched_out + running.other_out) as is_inflow_exceeding_recovery,
        coalesce(
            daily_attempts.failed_missing_identifiers * 2 > daily_attempts.failed_attempts,
            false
        ) as is_missing_identifiers_dominant,
        coalesce(daily_attempts.failed_conflict, 0) > 0 as has_conflicts
    from running
    left join daily_attempts
        on daily_attempts.metric_date = running.metric_date
    left join ranked_fail_reasons
        on
            ranked_fail_reasons.metric_date = running.metric_date
            and ranked_fail_reasons.reason_rank = 1
)

select * from final
