{%- set folded_columns = [
    'attempt_count', 'attempts_since_change', 'last_attempt_at', 'last_outcome',
    'last_fail_reason', 'last_identifiers_hash', 'retry_at', 'max_attempt_id',
] %}

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

-- the fold as of the last build (a left join on its unique key, which a count(*) of
-- the view skips), and the leads attempted since (empty right after a build)
stored_attempts as (
    select * from {{ ref('int_lead_attempts__stored') }}
),

recent_attempts as (
    select * from {{ ref('int_lead_attempts__recent') }}
),

-- each lead's newest rejection by a reviewer: the matcher decides the lead again at once
rejections as (
    select
        lead_source_pk,
        max(decided_at) as last_rejected_at
    from {{ ref('stg_kpi_red__review_decisions') }}
    where not is_link
    group by lead_source_pk
),

-- when the last build loaded a registry change that can cure each lead (its keys, or
-- one edit from them, held by a changed person before or after), and the row '*' that
-- stands for every lead (a left join on the unique key, which a count(*) skips)
registry_touches as (
    select * from {{ ref('int_lead_registry_touches') }}
),

every_lead_touched as (
    select touched_at from {{ ref('int_lead_registry_touches') }}
    where lead_source_pk = '*'
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

-- noqa: disable=LT02
attempted as (
    select
        red_leads.*,
        recent_attempts.lead_source_pk is not null or stored_attempts.lead_source_pk is not null
            as has_attempts,
        greatest(
            registry_touches.touched_at,
            (select every_lead_touched.touched_at from every_lead_touched)
        ) as registry_touched_at,
        {%- for column in folded_columns %}
        {{ current_attempts_fold(column) }} as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from red_leads  -- noqa: enable=LT02
    left join stored_attempts
        on stored_attempts.lead_source_pk = red_leads.lead_id
    left join recent_attempts
        on recent_attempts.lead_source_pk = red_leads.lead_id
    left join registry_touches
        on registry_touches.lead_source_pk = red_leads.lead_id
),

classified as (
    select
        lead_id,
        created_at,
        full_name,
        phone_key,
        document_key,
        email_key,
        has_usable_identifier,
        identifiers_hash,
        last_attempt_at,
        last_outcome,
        last_fail_reason,
        retry_at,
        max_attempt_id,
        coalesce(attempt_count, 0) as attempt_count,
        coalesce(attempts_since_change, 0) as attempts_since_change,
        {{ is_pending_match('has_attempts', 'last_identifiers_hash', 'identifiers_hash', 'last_outcome') }}
            as is_pending,
        registry_touched_at,
        (
            select rejections.last_rejected_at from rejections
            where rejections.lead_source_pk = attempted.lead_id
        ) as last_rejected_at
    from attempted
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
            when last_rejected_at > last_attempt_at then last_rejected_at
            when
                {{ retries_on_registry_change('last_fail_reason') }}
                and registry_touched_at > last_attempt_at
                then least(retry_at, registry_touched_at)
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
        full_name,
        coalesce(max_attempt_id, 0)::bigint as max_attempt_id
    from scheduled
)

select * from final
