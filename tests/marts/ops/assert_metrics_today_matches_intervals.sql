-- Today's backlog is the built one: the as-of day's `backlog_end` is the number of leads
-- open in `int_backlog_intervals` (both built by this build). That the open intervals
-- are the live backlog view's leads, for every lead unchanged since, is checked by
-- `assert_backlog_view_rows`, which reads the view.
with

today as (
    select backlog_end
    from {{ ref('v_cabinet_kpi_red_recovery_metrics_daily') }}
    where metric_date = {{ local_date(as_of_ts()) }}
),

open_intervals as (
    select count(*) as open_count
    from {{ ref('int_backlog_intervals') }}
    where is_open
),

final as (
    select
        'backlog_end differs from the open intervals' as problem,
        open_intervals.open_count,
        today.backlog_end
    from open_intervals
    left join today
        on true
    where coalesce(today.backlog_end, 0) <> open_intervals.open_count
)

select * from final
