-- the queue has exactly one row per lead that has ever been red and agrees with the
-- intervals on who is red. That it holds every lead of the live backlog view as red
-- follows with `assert_backlog_view_rows` (an unchanged lead is open in
-- the intervals exactly when it is in the view), so the view is not read here again.
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

final as (
    select * from duplicated
    union all
    select * from missing_or_stale
)

select * from final
