-- What `kpi-red metrics` and `kpi-red serve` read: dbt's metrics model and backlog view.

-- name: metrics
-- the last %(days)s days of metrics, up to the newest metric_date
select *
from {metrics}
where metric_date > (select max(metric_date) from {metrics}) - %(days)s::integer
order by metric_date
