-- today's (the as-of day's) backlog_end is the row count of the live backlog view
with

today as (
    select backlog_end
    from {{ ref('v_cabinet_kpi_red_recovery_metrics_daily') }}
    where metric_date = {{ local_date(as_of_ts()) }}
),

backlog as (
    select count(*) as backlog_rows
    from {{ ref('v_cabinet_kpi_red_backlog') }}
),

final as (
    select
        today.backlog_end,
        backlog.backlog_rows
    from backlog
    left join today
        on true
    where coalesce(today.backlog_end, 0) <> backlog.backlog_rows
)

select * from final
