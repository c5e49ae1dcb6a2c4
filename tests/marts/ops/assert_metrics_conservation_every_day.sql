-- backlog_end = backlog_start + new_backlog_in - matched_out - reviewed_out - other_out, every day
select *
from {{ ref('v_cabinet_kpi_red_recovery_metrics_daily') }}
where
    backlog_end <> backlog_start + new_backlog_in - matched_out - reviewed_out - other_out
    or net_change <> backlog_end - backlog_start
