{#-
    The attempts of some leads folded to one row per lead (the one definition behind
    `int_lead_attempts__stored` and `int_lead_attempts__recent`). `attempts` names a
    relation or CTE with the columns of `stg_kpi_red__match_attempts`; every attempt of a
    lead it holds must be there (the fold counts them). One window pass ranks each lead's
    attempts newest first (ties on `attempted_at` by `attempt_id`), one grouped pass over
    the same order folds them: no self-join, one sort.
-#}
{%- macro fold_lead_attempts(attempts) -%}
select
    folded.*,
    case
        when folded.last_outcome = 'failed'
            then folded.last_attempt_at + make_interval(mins => least(
                {{ sql_integer('retry_base_minutes', var('retry_base_minutes')) }}
                * power(2, least(greatest(folded.attempts_since_change - 1, 0), 30)),
                {{ sql_integer('retry_cap_minutes', var('retry_cap_minutes')) }}
            )::integer)
    end as retry_at
from (
    select
        ranked.lead_source_pk,
        count(*) as attempt_count,
        count(*) filter (where ranked.is_matched) as matched_attempt_count,
        min(ranked.attempted_at) as first_attempt_at,
        max(ranked.attempted_at) as last_attempt_at,
        max(ranked.attempt_id) filter (where ranked.recency_rank = 1) as last_attempt_id,
        max(ranked.outcome) filter (where ranked.recency_rank = 1) as last_outcome,
        max(ranked.fail_reason) filter (where ranked.recency_rank = 1) as last_fail_reason,
        max(ranked.match_rule) filter (where ranked.recency_rank = 1) as last_match_rule,
        max(ranked.person_key) filter (where ranked.recency_rank = 1) as last_person_key,
        max(ranked.last_identifiers_hash) as last_identifiers_hash,
        -- the trailing run of failed attempts on the current identifiers: it ends at the
        -- newest attempt that matched or saw other identifiers
        coalesce(
            min(ranked.recency_rank) filter (
                where ranked.is_matched or ranked.identifiers_hash <> ranked.last_identifiers_hash
            ) - 1,
            count(*)
        ) as attempts_since_change,
        max(ranked.attempt_id) as max_attempt_id
    from (
        select
            lead_attempts.lead_source_pk,
            lead_attempts.attempt_id,
            lead_attempts.attempted_at,
            lead_attempts.is_matched,
            lead_attempts.outcome,
            lead_attempts.fail_reason,
            lead_attempts.match_rule,
            lead_attempts.person_key,
            lead_attempts.identifiers_hash,
            row_number() over lead_recency as recency_rank,
            first_value(lead_attempts.identifiers_hash) over lead_recency as last_identifiers_hash
        from {{ attempts }} as lead_attempts
        window lead_recency as (
            partition by lead_attempts.lead_source_pk
            order by lead_attempts.attempted_at desc, lead_attempts.attempt_id desc
        )
    ) as ranked
    group by ranked.lead_source_pk
) as folded
{%- endmacro %}
