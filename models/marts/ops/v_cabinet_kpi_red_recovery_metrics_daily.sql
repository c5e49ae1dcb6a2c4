{{ config(materialized='table_in_place') }}

{#- Recomputed whole on every build, from `int_backlog_intervals` (one row per lead and
    interval) and `int_attempts_daily` (the attempts log per day): every day is a function
    of the sources as they are, so an incremental build and a --full-refresh give the same
    rows, whatever arrived late, was deleted or was removed. Rows dated after the as-of time
    (clock skew) count at the as-of time: an interval entered later counts as entered then
    (it is red now), one left later as left then (it is not red now), and one entered and
    left later not at all (see the model's docs). -#}

with

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

daily_attempts as (
    select * from {{ ref('int_attempts_daily') }}
),

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

bounds as (
    select
        least(
            {{ local_date('min(leads.created_at)') }},
            {{ local_date(as_of_ts()) }}
        ) as first_date,
        {{ local_date(as_of_ts()) }} as last_date,
        {{ as_of_ts() }} as as_of_at
    from leads
),

calendar as (
    select days.day::date as metric_date
    from bounds
    cross join lateral generate_series(
        bounds.first_date,
        bounds.last_date,
        interval '1 day'
    ) as days (day)
),

-- each interval as of the as-of time: nothing later than it
as_of_intervals as (
    select
        least(intervals.entered_at, bounds.as_of_at) as entered_at,
        case
            when intervals.left_at is not null then least(intervals.left_at, bounds.as_of_at)
        end as left_at,
        intervals.exit_kind
    from intervals
    cross join bounds
    where intervals.entered_at <= bounds.as_of_at or intervals.left_at is null
),

daily_entries as (
    select
        {{ local_date('entered_at') }} as metric_date,
        count(*) as new_backlog_in
    from as_of_intervals
    group by {{ local_date('entered_at') }}
),

daily_exits as (
    select
        {{ local_date('left_at') }} as metric_date,
        count(*) filter (where exit_kind = 'matched') as matched_out,
        count(*) filter (where exit_kind = 'reviewed') as reviewed_out,
        count(*) filter (where exit_kind not in ('matched', 'reviewed')) as other_out
    from as_of_intervals
    where left_at is not null
    group by {{ local_date('left_at') }}
),

movements as (
    select
        calendar.metric_date,
        coalesce(daily_entries.new_backlog_in, 0) as new_backlog_in,
        coalesce(daily_exits.matched_out, 0) as matched_out,
        coalesce(daily_exits.reviewed_out, 0) as reviewed_out,
        coalesce(daily_exits.other_out, 0) as other_out
    from calendar
    left join daily_entries
        on daily_entries.metric_date = calendar.metric_date
    left join daily_exits
        on daily_exits.metric_date = calendar.metric_date
),

-- nothing is in the backlog before the first lead's day
running as (
    select
        movements.*,
        coalesce(sum(
            movements.new_backlog_in - movements.matched_out - movements.reviewed_out
            - movements.other_out
        ) over (
            order by movements.metric_date
            rows between unbounded preceding and 1 preceding
        ), 0) as backlog_start
    from movements
),

final as (
    select
        running.metric_date::date as metric_date,
        running.backlog_start::bigint as backlog_start,
        running.new_backlog_in::bigint as new_backlog_in,
        running.matched_out::bigint as matched_out,
        running.reviewed_out::bigint as reviewed_out,
        running.other_out::bigint as other_out,
        (
            running.backlog_start + running.new_backlog_in - running.matched_out
            - running.reviewed_out - running.other_out
        )::bigint as backlog_end,
        (
            running.new_backlog_in - running.matched_out - running.reviewed_out
            - running.other_out
        )::bigint as net_change,
        daily_attempts.top_fail_reason::text as top_fail_reason,
        coalesce(daily_attempts.attempts, 0)::bigint as attempts,
        coalesce(daily_attempts.matched_attempts, 0)::bigint as matched_attempts,
        coalesce(daily_attempts.failed_attempts, 0)::bigint as failed_attempts,
        coalesce(daily_attempts.failed_missing_identifiers, 0)::bigint as failed_missing_identifiers,
        coalesce(daily_attempts.failed_no_match, 0)::bigint as failed_no_match,
        coalesce(daily_attempts.failed_conflict, 0)::bigint as failed_conflict,
        coalesce(daily_attempts.failed_low_confidence, 0)::bigint as failed_low_confidence,
        coalesce(daily_attempts.failed_ambiguous, 0)::bigint as failed_ambiguous,
        coalesce(daily_attempts.failed_name_mismatch, 0)::bigint as failed_name_mismatch,
        coalesce(daily_attempts.failed_person_changed, 0)::bigint as failed_person_changed,
        coalesce(daily_attempts.failed_conflict, 0)::bigint as conflicts,
        (
            running.new_backlog_in > running.matched_out + running.reviewed_out + running.other_out
        ) as is_inflow_exceeding_recovery,
        coalesce(
            daily_attempts.failed_missing_identifiers * 2 > daily_attempts.failed_attempts,
            false
        ) as is_missing_identifiers_dominant,
        coalesce(daily_attempts.failed_conflict, 0) > 0 as has_conflicts
    from running
    left join daily_attempts
        on daily_attempts.metric_date = running.metric_date
)

select * from final
