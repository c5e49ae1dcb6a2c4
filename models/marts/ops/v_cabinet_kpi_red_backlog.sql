{{ config(materialized='view') }}

with

leads as (
    select * from {{ ref('int_lead_identifiers') }}
),

links as (
    select * from {{ ref('stg_canon__identity_links') }}
    where is_lead_link
),

claims as (
    select * from {{ ref('stg_claims__lead_claims') }}
),

attempts_folded as (
    select * from {{ ref('int_lead_attempts_folded') }}
),

persons as (
    select * from {{ ref('stg_canon__persons') }}
),

registry_changes as (
    select max(changed_at) as registry_changed_at
    from persons
),

red_leads as (
    select leads.*
    from leads
    where
        not exists (
            select 1 from links
            where links.source_pk = leads.lead_id
        )
        and not exists (
            select 1 from claims
            where claims.lead_id = leads.lead_id
        )
),

classified as (
    select
        red_leads.lead_id,
        red_leads.created_at,
        red_leads.full_name,
        red_leads.phone_key,
        red_leads.document_key,
        red_leads.email_key,
        red_leads.has_usable_identifier,
        red_leads.identifiers_hash,
        attempts_folded.last_attempt_at,
        attempts_folded.last_outcome,
        attempts_folded.last_fail_reason,
        attempts_folded.retry_at,
        coalesce(attempts_folded.attempt_count, 0) as attempt_count,
        coalesce(attempts_folded.attempts_since_change, 0) as attempts_since_change,
        -- nothing to learn from the last attempt: never tried, new identifiers, or its
        -- match was undone (the link is gone)
        (
            attempts_folded.lead_source_pk is null
            or attempts_folded.last_identifiers_hash <> red_leads.identifiers_hash
            or attempts_folded.last_outcome = 'matched'
        ) as is_pending,
        registry_changes.registry_changed_at
    from red_leads
    left join attempts_folded
        on attempts_folded.lead_source_pk = red_leads.lead_id
    cross join registry_changes
),

scheduled as (
    select
        classified.*,
        case
            when not has_usable_identifier then 'missing_identifiers'
            when is_pending then 'pending_match'
            else last_fail_reason
        end as reason_bucket,
        case
            when last_attempt_at is null then created_at
            when is_pending then last_attempt_at
            when
                last_fail_reason in ('no_match', 'low_confidence', 'conflict', 'ambiguous')
                and registry_changed_at > last_attempt_at
                then least(retry_at, registry_changed_at)
            else retry_at
        end as next_attempt_at
    from classified
),

final as (
    select
        lead_id::text as lead_source_pk,
        {{ local_date('created_at') }} as lead_date,
        reason_bucket::text as reason_bucket,
        ({{ local_date(as_of_ts()) }} - {{ local_date('created_at') }})::integer as age_days,
        created_at as lead_created_at,
        identifiers_hash,
        last_attempt_at,
        attempt_count::integer as attempt_count,
        attempts_since_change::integer as attempts_since_change,
        last_fail_reason,
        next_attempt_at,
        next_attempt_at <= {{ as_of_ts() }} as is_eligible,
        has_usable_identifier,
        phone_key,
        document_key,
        email_key,
        full_name
    from scheduled
)

select * from final
