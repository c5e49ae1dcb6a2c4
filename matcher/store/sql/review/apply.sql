-- `kpi-red review` (terminal or CSV): a set of decisions, one statement, after the leads'
-- advisory locks (`lock`: the matcher's per-lead keys, taken in order so that two
-- reviewers never deadlock; a matcher batch holding one is waited for). Each decision is
-- checked against the LIVE sources: the lead exists with the identifiers hash the reviewer
-- saw, the person exists; a `link` also needs the lead unclaimed and unlinked. A decision
-- already recorded for the lead as it is changes nothing (an import run twice). A link
-- is written as the matcher writes one (every column set; never over an existing link),
-- with its decision, at one `statement_timestamp()`; the origin rows follow with the
-- matcher's own statement (origin.sql). Identifiers are
-- composed by psycopg.sql.

-- name: lock
select count(pg_advisory_xact_lock({lock_key}))
from (
    select distinct wanted.lead_source_pk
    from unnest(%(leads)s::text[]) as wanted (lead_source_pk)
    order by wanted.lead_source_pk
) as wanted

-- name: apply
with

clock as (
    select statement_timestamp() as decided_at
),

wanted as (
    select *
    from unnest(
        %(row_numbers)s::integer[],
        %(leads)s::text[],
        %(persons)s::text[],
        %(decisions)s::text[],
        %(notes)s::text[],
        %(hashes)s::text[]
    ) as wanted (row_number, lead_source_pk, person_key, decision, note, identifiers_hash)
),

checked as materialized (
    select
        wanted.*,
        leads.lead_id is null as is_unknown_lead,
        leads.created_at as lead_created_at,
        leads.identifiers_hash as live_identifiers_hash,
        persons.person_key is null as is_unknown_person,
        exists (
            select 1 from {claims} as claims
            where claims.lead_id = wanted.lead_source_pk
        ) as is_claimed,
        links.person_key as linked_person_key,
        exists (
            select 1 from {reviews} as reviews
            where
                reviews.lead_source_pk = wanted.lead_source_pk
                and reviews.person_key = wanted.person_key
                and reviews.decision = wanted.decision
                and reviews.identifiers_hash = wanted.identifiers_hash
        ) as is_recorded
    from wanted
    left join lateral (
        select
            lead_rows.lead_id,
            lead_rows.created_at,
            {lead_hash} as identifiers_hash
        from {leads} as lead_rows
        where lead_rows.lead_id = wanted.lead_source_pk
        limit 1
    ) as leads on true
    left join lateral (
        select person_rows.person_key
        from {registry} as person_rows
        where person_rows.person_key = wanted.person_key
        limit 1
    ) as persons on true
    left join lateral (
        select link_rows.person_key
        from {links} as link_rows
        where
            link_rows.source_table = %(source_table)s
            and link_rows.source_pk = wanted.lead_source_pk
        limit 1
    ) as links on true
),

verdicts as (
    select
        checked.*,
        case
            when checked.is_unknown_lead then 'unknown_lead'
            when checked.is_unknown_person then 'unknown_person'
            when
                checked.is_recorded
                and (checked.decision = 'reject' or checked.linked_person_key = checked.person_key)
                then 'unchanged'
            when checked.decision = 'link' and checked.linked_person_key is not null
                then 'already_linked'
            when checked.decision = 'link' and checked.is_claimed then 'claimed'
            when checked.decision = 'reject' and checked.linked_person_key = checked.person_key
                then 'linked_to_person'
            when checked.live_identifiers_hash is distinct from checked.identifiers_hash
                then 'stale'
            else 'apply'
        end as status
    from checked
),

new_links as (
    insert into {links} (
        source_table, source_pk, person_key, match_rule, match_score, linked_at, linked_by,
        run_id
    )
    select
        %(source_table)s,
        verdicts.lead_source_pk,
        verdicts.person_key,
        'review',
        100,
        clock.decided_at,
        %(linked_by)s,
        %(run_id)s
    from verdicts
    cross join clock
    where verdicts.status = 'apply' and verdicts.decision = 'link'
    on conflict (source_table, source_pk) do nothing
    returning source_pk
),

new_decisions as (
    insert into {reviews} (
        lead_source_pk, person_key, decision, reviewer, db_user, note, identifiers_hash,
        decided_via, run_id, decided_at
    )
    select
        verdicts.lead_source_pk,
        verdicts.person_key,
        verdicts.decision,
        %(reviewer)s,
        current_user,
        nullif(verdicts.note, ''),
        verdicts.identifiers_hash,
        %(decided_via)s,
        %(run_id)s,
        clock.decided_at
    from verdicts
    cross join clock
    where
        verdicts.status = 'apply'
        and (
            verdicts.decision = 'reject'
            or verdicts.lead_source_pk in (select new_links.source_pk from new_links)
        )
    returning lead_source_pk, person_key, decision
)

select
    verdicts.row_number,
    case
        when verdicts.status <> 'apply' then verdicts.status
        when verdicts.decision = 'reject' then 'rejected'
        when verdicts.lead_source_pk in (select new_links.source_pk from new_links)
            then 'linked'
        else 'linked_meanwhile'
    end as status,
    verdicts.lead_created_at,
    (select clock.decided_at from clock) as decided_at
from verdicts
order by verdicts.row_number
