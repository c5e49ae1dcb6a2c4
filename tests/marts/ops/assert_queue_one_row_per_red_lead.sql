-- the queue has exactly one row per lead that has ever been red, agrees with the
-- intervals on who is red, and holds every lead of the live backlog view whose backlog
-- inputs did not change since the build as red
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

stored_inputs as (
    select
        lead_source_pk,
        inputs_hash
    from {{ ref('int_backlog_intervals') }}
    where interval_number = 1
),

backlog_leads as (
    select
        leads.lead_id,
        leads.created_at
    from {{ ref('stg_cabinet__leads') }} as leads
    where leads.lead_id in (select backlog.lead_source_pk from backlog)
),

-- compared at one moment: only the leads whose backlog inputs are still the ones the
-- build saw (a lead linked or created during the build is the next build's); the
-- comparison is a column, filtered last, so no join is planned on a guess of its result
backlog_inputs as (
    select
        live_inputs.lead_id as lead_source_pk,
        coalesce(stored_inputs.inputs_hash = live_inputs.inputs_hash, false) as is_unchanged
    from ({{ backlog_lead_inputs('backlog_leads') }}) as live_inputs
    left join stored_inputs
        on stored_inputs.lead_source_pk = live_inputs.lead_id
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
        backlog_inputs.lead_source_pk,
        'red in the backlog view but not in the queue' as problem
    from backlog_inputs
    left join queue
        on queue.lead_source_pk = backlog_inputs.lead_source_pk
    where
        backlog_inputs.is_unchanged
        and queue.is_in_backlog is distinct from true
),

final as (
    select * from duplicated
    union all
    select * from missing_or_stale
    union all
    select * from backlog_disagrees
)

select * from final
