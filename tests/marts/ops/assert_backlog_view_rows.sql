-- Every check on the live backlog view and its causes view, read once each (every
-- generic test on a live view evaluates it whole, over every lead: at 500,000 leads these
-- checks were seven evaluations and half of an hourly build). Each failing row names its
-- problem: the view's key is null, repeated or not a lead; its reason bucket is null or
-- unknown; the lead is linked or claimed; the causes view's bucket is null, repeated or
-- counts other leads than the backlog has in that bucket.
with

backlog as (
    select * from {{ ref('v_cabinet_kpi_red_backlog') }}
),

causes as (
    select * from {{ ref('v_cabinet_kpi_red_backlog_causes') }}
),

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
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
            when
                reason_bucket not in (
                    'missing_identifiers', 'pending_match', 'no_match', 'conflict',
                    'low_confidence', 'ambiguous', 'name_mismatch', 'person_changed'
                )
                then 'backlog: unknown reason_bucket ' || reason_bucket
            when is_linked then 'backlog: the lead has a cabinet link'
            when is_claimed then 'backlog: the lead has a claim'
        end as problem
    from backlog_rows
),

backlog_by_cause as (
    select
        reason_bucket,
        count(*) as leads
    from backlog
    group by reason_bucket
),

cause_rows as (
    select
        causes.reason_bucket,
        causes.leads,
        count(*) over (partition by causes.reason_bucket) as row_count
    from causes
),

cause_problems as (
    select
        coalesce(cause_rows.reason_bucket, backlog_by_cause.reason_bucket) as key_value,
        case
            when cause_rows.row_count is null then 'causes: a bucket of the backlog is missing'
            when cause_rows.reason_bucket is null then 'causes: reason_bucket is null'
            when cause_rows.row_count > 1 then 'causes: reason_bucket is not unique'
            when
                cause_rows.leads <> coalesce(backlog_by_cause.leads, 0)
                then 'causes: other lead count than the backlog'
        end as problem
    from cause_rows
    full outer join backlog_by_cause
        on backlog_by_cause.reason_bucket = cause_rows.reason_bucket
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
    from cause_problems
    where problem is not null
)

select * from final
