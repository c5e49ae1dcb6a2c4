{#- Live: the backlog view's eligible leads now, found without evaluating every lead.
    A lead can be due only if it was due at the last build (the queue's `next_attempt_at`,
    never later than the view's but for the two cases below), or something about it
    changed since: it was attempted (`attempted_since_build`), a reviewer rejected a
    person for it, a registry change touched it after its failed attempt
    (`int_lead_registry_touches`), or it was created or
    edited since the build (its own timestamps, from the newest build that stored any
    lead's keys minus `queue_lookback_minutes`, unless the queue holds it with the same
    identifiers: then the other cases say all). Each of those leads is then read through
    the backlog view itself, one lead at a time (`offset 0` keeps the view a subquery, so
    PostgreSQL probes its indexes per lead instead of joining every lead), and kept when the
    view says it is eligible: the rules live in the view only. When more than
    `backlog_due_bulk_percent` of the queue's rows are due at the build (a drain), every
    candidate is joined to the view at once instead: the same rows, one pass over every
    lead (~4 us per lead against ~16 us per candidate). A lead that became red
    without such a trace (a link removed, a claim withdrawn, a lead inserted or edited with
    timestamps older than the look-back) is due at the next build. -#}

with

-- the queue as the last build left it: its leads due then (read twice, for the arms and
-- for the choice below: computed once, by the queue's index), and those failed for want
-- of a person (inlined in each arm that reads them, so each uses the queue's indexes)
due_at_build as (
    select * from {{ ref('cabinet_kpi_red_recovery_queue') }}
    where
        status in ('pending', 'failed')
        and next_attempt_at <= {{ as_of_ts() }}
),

failed_at_build as not materialized (
    select * from {{ ref('cabinet_kpi_red_recovery_queue') }}
    where
        status = 'failed'
        and {{ retries_on_registry_change('fail_reason') }}
),

-- what the queue knows of each lead: the identifiers it was built from
queued as (
    select
        lead_source_pk,
        identifiers_hash
    from {{ ref('cabinet_kpi_red_recovery_queue') }}
),

leads as (
    select * from {{ ref('stg_cabinet__leads') }}
),

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

stored_attempts as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

rejections as (
    select * from {{ ref('stg_kpi_red__review_decisions') }}
    where not is_link
),

-- the leads a registry change loaded by the last build can cure, and the row '*' that
-- stands for every lead
registry_touches as (
    select * from {{ ref('int_lead_registry_touches') }}
    where lead_source_pk <> '*'
),

every_lead_touched as (
    select touched_at from {{ ref('int_lead_registry_touches') }}
    where lead_source_pk = '*'
),

stored_since as (
    select
        {{ stored_watermark(ref('int_lead_identifiers__stored'), 'loaded_at') }}
        - {{ queue_lookback() }} as changed_since
),

-- noqa: disable=ST06
-- every arm's leads, a lead in several arms more than once (materialized, then deduped
-- by hashing: a sorted union made PostgreSQL read each arm in key order, by whole-index
-- scans of the leads and the touches)
candidate_rows as materialized (
    select due_at_build.lead_source_pk
    from due_at_build
    union all
    -- the view retries these at once when a registry change touched them after the
    -- attempt: a probe of the queue's key per touched lead (a lateral with a limit; a
    -- join hashed every failed lead of the queue, which grows with the history)
    select registry_touches.lead_source_pk
    from registry_touches
    inner join lateral (
        select failed_at_build.last_attempt_at
        from failed_at_build
        where
            failed_at_build.lead_source_pk = registry_touches.lead_source_pk
            and failed_at_build.last_attempt_at < registry_touches.touched_at
        order by failed_at_build.lead_source_pk
        limit 1
    ) as touched_failure on true
    union all
    -- every failed lead attempted before the row '*' moved (the queue's index on
    -- `(status, last_attempt_at)` finds none when it is older than every attempt)
    select failed_at_build.lead_source_pk
    from failed_at_build
    where
        failed_at_build.last_attempt_at < (
            select every_lead_touched.touched_at from every_lead_touched
        )
    union all
    -- attempted since the build: the leads only, by the log's primary key (their fold,
    -- `int_lead_attempts__recent`, reads each one's every attempt: the whole log, hashed,
    -- for an hour's few)
    select attempts.lead_source_pk
    from attempts
    where {{ attempted_since_build('attempts.attempt_id', 'stored_attempts') }}
    union all
    select rejections.lead_source_pk
    from rejections
    union all
    -- created or edited since the build: those the queue already holds with the same
    -- identifiers are the arms above (a lead's own timestamp only says it may be new).
    -- Each probes the queue's key (a lateral with a limit: PostgreSQL cannot estimate
    -- the timestamp filter, and hashed the whole queue for a few thousand leads)
    select leads.lead_id
    from leads
    left join lateral (
        select queued.identifiers_hash
        from queued
        where queued.lead_source_pk = leads.lead_id
        order by queued.lead_source_pk
        limit 1
    ) as queued_lead on true
    where
        (
            leads.changed_at is null
            or leads.changed_at >= (select stored_since.changed_since from stored_since)
        )
        and queued_lead.identifiers_hash is distinct from leads.identifiers_hash
),
-- noqa: enable=ST06

candidates as (
    select distinct candidate_rows.lead_source_pk
    from candidate_rows
),

-- a drain (most leads due at the build) joins every candidate to the backlog view at
-- once, one pass over every lead; an hour's few read it one lead at a time. Decided once
-- per query (an InitPlan): PostgreSQL runs only the branch whose filter holds
is_bulk as (
    {{ is_bulk_share('due_at_build', ref('cabinet_kpi_red_recovery_queue')) }}
),

-- one lead at a time: `offset 0` keeps the view a subquery (sorted by its one row, for
-- the linter), so PostgreSQL probes its indexes per lead instead of joining every lead
due_per_lead as (
    select backlog.*
    from candidates
    inner join lateral (
        select *
        from {{ ref('v_cabinet_kpi_red_backlog') }} as backlog
        where backlog.lead_source_pk = candidates.lead_source_pk
        order by backlog.lead_source_pk
        offset 0
    ) as backlog on backlog.is_eligible
    where not (select is_bulk.is_bulk from is_bulk)
),

-- every candidate at once (hash joins): ~4 us per lead of the view against ~16 us per
-- candidate above, at 500,000 leads
due_in_bulk as (
    select backlog.*
    from candidates
    inner join {{ ref('v_cabinet_kpi_red_backlog') }} as backlog
        on backlog.lead_source_pk = candidates.lead_source_pk
    where
        backlog.is_eligible
        and (select is_bulk.is_bulk from is_bulk)
),

due as (
    select * from due_per_lead
    union all
    select * from due_in_bulk
),

final as (
    select
        lead_source_pk,
        lead_created_at,
        identifiers_hash,
        full_name,
        phone_key,
        document_key,
        email_key,
        max_attempt_id,
        reason_bucket,
        next_attempt_at
    from due
)

select * from final
