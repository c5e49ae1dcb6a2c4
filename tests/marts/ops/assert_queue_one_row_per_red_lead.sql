-- The queue has a row for exactly the leads of the intervals, and agrees with them on
-- who is red. That it holds every lead of the live backlog view as red follows with
-- `assert_backlog_view_rows` (an unchanged lead is open in the intervals exactly when it
-- is in the view), so the view is not read here again. One row per lead is the queue's
-- primary key, enforced as rows are written (its `unique_combination` test reads the
-- catalog, or the rows should the key be dropped).
--
-- Compared in two joins of one row per lead each, no aggregate: the leads (the
-- intervals' first row of each lead), then the red ones (a lead has at most one open
-- interval: `at_most_one_open`).
with

queue as not materialized (
    select * from {{ ref('cabinet_kpi_red_recovery_queue') }}
),

intervals as not materialized (
    select * from {{ ref('int_backlog_intervals') }}
),

missing_or_extra as (
    select
        coalesce(queue.lead_source_pk, first_intervals.lead_source_pk) as lead_source_pk,
        'queue and intervals disagree' as problem
    from queue
    full outer join (  -- noqa: ST05
        select lead_source_pk from intervals
        where interval_number = 1
    ) as first_intervals
        on first_intervals.lead_source_pk = queue.lead_source_pk
    where queue.lead_source_pk is null or first_intervals.lead_source_pk is null
),

red_disagreeing as (
    select
        coalesce(red_queue.lead_source_pk, open_intervals.lead_source_pk) as lead_source_pk,
        'queue and intervals disagree' as problem
    from (  -- noqa: ST05
        select lead_source_pk from queue
        where is_in_backlog
    ) as red_queue
    full outer join (  -- noqa: ST05
        select lead_source_pk from intervals
        where is_open
    ) as open_intervals
        on open_intervals.lead_source_pk = red_queue.lead_source_pk
    where red_queue.lead_source_pk is null or open_intervals.lead_source_pk is null
),

final as (
    select * from missing_or_extra
    union
    select * from red_disagreeing
)

select * from final
