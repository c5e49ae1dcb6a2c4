-- the backlog at the end of a day is the backlog at the start of the next; no day is missing
with

metrics as (
    select * from {{ ref('v_cabinet_kpi_red_recovery_metrics_daily') }}
),

consecutive as (
    select
        metric_date,
        backlog_end,
        lead(metric_date) over (order by metric_date) as next_metric_date,
        lead(backlog_start) over (order by metric_date) as next_backlog_start
    from metrics
),

final as (
    select *
    from consecutive
    where
        next_metric_date is not null
        and (
            next_metric_date <> metric_date + 1
            or next_backlog_start <> backlog_end
        )
)

select * from final
