{#-
    Everything a lead's backlog intervals are made of, one row per lead of `leads` (a
    relation or CTE with `lead_id` and `created_at`): its current link (person, time, who
    made it), its first claim, its matched attempts (count and newest id: the log is
    append-only), its newest review link and logged link removal, the time it left the
    backlog for good (the earlier of link and first claim, never before its creation; null
    while red), and `inputs_hash`, an md5 of all of them. Each log is aggregated over the
    leads of `leads` only (a semi-join before the aggregate). Two computations with the
    same hash give the same intervals: an incremental `int_backlog_intervals` recomputes
    exactly the leads whose hash changed, and the singular tests compare the live view
    with the built intervals on the leads whose hash did not.
-#}
{%- macro backlog_lead_inputs(leads) -%}
select
    leads.lead_id,
    leads.created_at,
    links.source_pk is not null as has_link,
    links.person_key as link_person_key,
    links.linked_at,
    links.linked_by,
    first_claims.lead_id is not null as has_claim,
    first_claims.first_claimed_at,
    coalesce(matched.matched_attempts, 0) as matched_attempts,
    matched.last_matched_attempt_id,
    reviewed.last_review_id,
    removed.last_removal_id,
    case
        when links.source_pk is not null or first_claims.lead_id is not null
            then greatest(
                least(
                    case
                        when links.source_pk is not null
                            then coalesce(links.linked_at, '-infinity')
                    end,
                    first_claims.first_claimed_at
                ),
                leads.created_at
            )
    end as final_left_at,
    md5(concat_ws(
        '|',
        extract(epoch from leads.created_at)::text,
        (links.source_pk is not null)::text,
        coalesce(links.person_key, ''),
        coalesce(extract(epoch from links.linked_at)::text, ''),
        coalesce(links.linked_by, ''),
        (first_claims.lead_id is not null)::text,
        coalesce(extract(epoch from first_claims.first_claimed_at)::text, ''),
        coalesce(matched.matched_attempts, 0)::text,
        coalesce(matched.last_matched_attempt_id::text, ''),
        coalesce(reviewed.last_review_id::text, ''),
        coalesce(removed.last_removal_id::text, '')
    )) as inputs_hash
from {{ leads }} as leads
left join {{ ref('stg_canon__identity_links') }} as links
    on
        links.is_lead_link
        and links.source_pk = leads.lead_id
left join (
    select
        lead_id,
        min(claimed_at) as first_claimed_at
    from {{ ref('stg_claims__lead_claims') }}
    where lead_id in (select scope.lead_id from {{ leads }} as scope)
    group by lead_id
) as first_claims
    on first_claims.lead_id = leads.lead_id
left join (
    select
        lead_source_pk,
        count(*) as matched_attempts,
        max(attempt_id) as last_matched_attempt_id
    from {{ ref('stg_kpi_red__match_attempts') }}
    where
        is_matched
        and lead_source_pk in (select scope.lead_id from {{ leads }} as scope)
    group by lead_source_pk
) as matched
    on matched.lead_source_pk = leads.lead_id
left join (
    select
        lead_source_pk,
        max(decision_id) as last_review_id
    from {{ ref('stg_kpi_red__review_decisions') }}
    where
        is_link
        and lead_source_pk in (select scope.lead_id from {{ leads }} as scope)
    group by lead_source_pk
) as reviewed
    on reviewed.lead_source_pk = leads.lead_id
left join (
    select
        lead_source_pk,
        max(removal_id) as last_removal_id
    from {{ ref('stg_kpi_red__link_removals') }}
    where lead_source_pk in (select scope.lead_id from {{ leads }} as scope)
    group by lead_source_pk
) as removed
    on removed.lead_source_pk = leads.lead_id
{%- endmacro %}
