-- the queue has exactly one row per lead that has ever been red, and agrees with the
-- backlog on who is red now
with

queue as (
    select * from {{ ref('cabinet_kpi_red_recovery_queue') }}
),

intervals as (
    select
        lead_source_pk,
        bool_or(is_open) as is_in_backlog
    from {{ ref('int_backlog_intervals') }}
    group by lead_source_pk
),

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

duplicated as (
    select
        lead_source_pk,
        'duplicate queue row' as problem
    from queue
    group by lead_source_pk
    having count(*) > 1
),

missing_or_stale as (
    select
        coalesce(queue.lead_source_pk, intervals.lead_source_pk) as lead_source_pk,
        'queue and intervals disagree' as problem
    from queue
    full outer join intervals
        on intervals.lead_source_pk = queue.lead_source_pk
    where
        queue.lead_source_pk is null
        or intervals.lead_source_pk is null
        or queue.is_in_backlog <> intervals.is_in_backlog
),

backlog_disagrees as (
    select
        backlog.lead_source_pk,
        'red in the backlog view but not in the queue' as problem
    from backlog
    left join queue
        on queue.lead_source_pk = backlog.lead_source_pk
    where queue.is_in_backlog is distinct from true
),

final as (
    select * from duplicated
    union all
    select * from missing_or_stale
    union all
    select * from backlog_disagrees
)

select * from final
