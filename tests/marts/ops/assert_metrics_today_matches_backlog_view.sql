-- Today's backlog is the live backlog's, compared at one moment: the as-of day's
-- backlog_end is the number of leads open in int_backlog_intervals (both built by this
-- build), and every lead whose backlog inputs are still the ones its intervals were built
-- from is open there exactly when it is in the live backlog view. A lead whose inputs
-- changed since (a link a matcher wrote during the build, a new lead) is the next build's.
with

today as (
    select backlog_end
    from {{ ref('v_cabinet_kpi_red_recovery_metrics_daily') }}
    where metric_date = {{ local_date(as_of_ts()) }}
),

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

open_leads as (
    select lead_source_pk
    from intervals
    where is_open
),

stored_inputs as (
    select
        lead_source_pk,
        inputs_hash
    from intervals
    where interval_number = 1
),

compared_leads as (
    select
        leads.lead_id,
        leads.created_at
    from {{ ref('stg_cabinet__leads') }} as leads
    where leads.lead_id in (
        select open_leads.lead_source_pk from open_leads
        union
        select backlog.lead_source_pk from backlog
    )
),

live_inputs as (
    {{ backlog_lead_inputs('compared_leads') }}
),

-- the comparison is a column, filtered last, so no join is planned on a guess of its
-- result
compared_inputs as (
    select
        live_inputs.lead_id as lead_source_pk,
        coalesce(stored_inputs.inputs_hash = live_inputs.inputs_hash, false) as is_unchanged
    from live_inputs
    left join stored_inputs
        on stored_inputs.lead_source_pk = live_inputs.lead_id
),

count_mismatch as (
    select
        'backlog_end differs from the open intervals' as problem,
        null::text as lead_source_pk
    from (select count(*) as open_count from open_leads) as counted
    left join today
        on true
    where coalesce(today.backlog_end, 0) <> counted.open_count
),

membership_mismatch as (
    select
        'an unchanged lead is red in one and not the other' as problem,
        compared_inputs.lead_source_pk
    from compared_inputs
    left join open_leads
        on open_leads.lead_source_pk = compared_inputs.lead_source_pk
    left join backlog
        on backlog.lead_source_pk = compared_inputs.lead_source_pk
    where
        compared_inputs.is_unchanged
        and (open_leads.lead_source_pk is null) <> (backlog.lead_source_pk is null)
),

final as (
    select * from count_mismatch
    union all
    select * from membership_mismatch
)

select * from final
