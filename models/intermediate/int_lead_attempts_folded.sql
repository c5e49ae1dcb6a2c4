with

attempts as (
    select * from {{ ref('stg_kpi_red__match_attempts') }}
),

ranked as (
    select
        lead_source_pk,
        attempt_id,
        attempted_at,
        is_matched,
        outcome,
        fail_reason,
        match_rule,
        person_key,
        identifiers_hash,
        row_number() over lead_recency as recency_rank,
        first_value(identifiers_hash) over lead_recency as last_identifiers_hash
    from attempts
    window lead_recency as (
        partition by lead_source_pk
        order by attempted_at desc, attempt_id desc
    )
),

per_lead as (
    select
        lead_source_pk,
        count(*) as attempt_count,
        count(*) filter (where is_matched) as matched_attempt_count,
        min(attempted_at) as first_attempt_at,
        max(attempted_at) as last_attempt_at,
        -- the trailing run of failed attempts on the current identifiers: it ends at the
        -- newest attempt that matched or saw other identifiers
        coalesce(
            min(recency_rank) filter (
                where is_matched or identifiers_hash <> last_identifiers_hash
            ) - 1,
            count(*)
        ) as attempts_since_change
    from ranked
    group by lead_source_pk
),

last_attempts as (
    select * from ranked
    where recency_rank = 1
),

final as (
    select
        per_lead.lead_source_pk,
        per_lead.attempt_count,
        per_lead.matched_attempt_count,
        per_lead.first_attempt_at,
        per_lead.last_attempt_at,
        last_attempts.attempt_id as last_attempt_id,
        last_attempts.outcome as last_outcome,
        last_attempts.fail_reason as last_fail_reason,
        last_attempts.match_rule as last_match_rule,
        last_attempts.person_key as last_person_key,
        last_attempts.identifiers_hash as last_identifiers_hash,
        per_lead.attempts_since_change,
        case
            when last_attempts.outcome = 'failed'
                then per_lead.last_attempt_at + make_interval(mins => least(
                    {{ var('retry_base_minutes') }}
                    * power(2, least(greatest(per_lead.attempts_since_change - 1, 0), 30)),
                    {{ var('retry_cap_minutes') }}
                )::integer)
        end as retry_at
    from per_lead
    inner join last_attempts
        on last_attempts.lead_source_pk = per_lead.lead_source_pk
)

select * from final
