-- Every check on the live backlog view, which is read once (a generic test on a live
-- view evaluates it whole, over every lead: at 500,000 leads seven such tests and a
-- second singular test were most of an hourly build). Each failing row names its
-- problem: the view's key is null, repeated or not a lead; its reason bucket is null or
-- unknown; the lead is linked or claimed; or the view and the build disagree on an
-- unchanged lead: every lead whose backlog inputs are still the ones its intervals were
-- built from (`inputs_hash`) is open in `int_backlog_intervals` exactly when it is in
-- the view. A lead whose inputs changed since (a link a matcher wrote during the build, a
-- new lead) is the next build's. (The causes view is the backlog view grouped by bucket:
-- its unit test checks that.)
with

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

intervals as (
    select * from {{ ref('int_backlog_intervals') }}
),

leads as (
    select
        lead_id,
        created_at
    from {{ ref('stg_cabinet__leads') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
),

claimed_leads as (
    select distinct lead_id
    from claims
),

backlog_rows as (
    select
        backlog.lead_source_pk,
        backlog.reason_bucket,
        count(*) over (partition by backlog.lead_source_pk) as row_count,
        leads.lead_id is not null as is_lead,
        links.source_pk is not null as is_linked,
        claimed_leads.lead_id is not null as is_claimed
    from backlog
    left join leads
        on leads.lead_id = backlog.lead_source_pk
    -- one cabinet link per lead at most (the links' unique key)
    left join links
        on links.source_pk = backlog.lead_source_pk
    left join claimed_leads
        on claimed_leads.lead_id = backlog.lead_source_pk
),

backlog_problems as (
    select
        lead_source_pk as key_value,
        case
            when lead_source_pk is null then 'backlog: lead_source_pk is null'
            when row_count > 1 then 'backlog: lead_source_pk is not unique'
            when not is_lead then 'backlog: not a lead of stg_cabinet__leads'
            when reason_bucket is null then 'backlog: reason_bucket is null'
            -- a bucket is a fail reason, or pending_match (not attempted since a change)
            when not {{ is_known_reason_bucket('reason_bucket') }}
                then 'backlog: unknown reason_bucket ' || reason_bucket
            when is_linked then 'backlog: the lead has a cabinet link'
            when is_claimed then 'backlog: the lead has a claim'
        end as problem
    from backlog_rows
),

open_leads as (
    select lead_source_pk
    from intervals
    where is_open
),

-- the leads red in one of them only (a lead red in both, or in neither, agrees), with
-- their inputs now: usually the few that changed since the build
disagreeing_leads as (
    select coalesce(open_leads.lead_source_pk, backlog_rows.lead_source_pk) as lead_source_pk
    from open_leads
    full outer join backlog_rows
        on backlog_rows.lead_source_pk = open_leads.lead_source_pk
    where open_leads.lead_source_pk is null or backlog_rows.lead_source_pk is null
),

membership_problems as (
    {{ unchanged_membership_problems('disagreeing_leads') }}
),

final as (
    select
        problem,
        key_value
    from backlog_problems
    where problem is not null
    union all
    select
        problem,
        key_value
    from membership_problems
)

select * from final
