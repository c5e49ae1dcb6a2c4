-- One batch of `kpi-red match`, written in one statement: the decisions are staged in
-- pg_temp.{stage} (binary COPY) and each lead holds its advisory lock (`lock` below).
-- Every lead is checked against the LIVE sources, not the copy the decision was made on:
-- it still exists, is unclaimed, has no link, its identifiers hash is the one decided on,
-- no attempt was logged since, no reviewer rejected the chosen person since, and
-- (decided matched) the chosen person's registry row still hashes as it did when the
-- decision read it. What changed is not written as
-- decided: the lead is left out with a reason (`disposition`; the next run decides it
-- again if it is still red) or, for a changed person, recorded as failed
-- `person_changed`; a lead someone else linked meanwhile is returned to the caller, which
-- records a conflict (or the agreement). Every column written is set here
-- (upstream tables have no defaults). Identifiers are composed by psycopg.sql.

-- name: stage
create temp table if not exists {stage} (
    lead_source_pk text not null,
    last_attempt_id bigint not null,
    lead_created_at timestamptz,
    outcome text not null,
    fail_reason text,
    match_rule text,
    match_score real,
    person_key text,
    evidence text not null,
    identifiers_hash text not null,
    person_identifiers_hash text
) on commit delete rows

-- name: lock
-- leads another matcher holds are dropped from the batch (and returned)
delete from pg_temp.{stage} as staged
where not pg_try_advisory_xact_lock({lock_key})
returning staged.lead_source_pk

-- name: write
with

clock as (
    select statement_timestamp() as written_at
),

-- the live state of each lead: laterals, so each is an index probe (the staging table has
-- no statistics; measured, 3 to 5 ms per probe of a 2,000-lead batch)
-- noqa: disable=LT01,LT02,LT06,LT09,AL05
checked as materialized (
    select
        staged.*,
        attempted.lead_source_pk is not null as is_attempted_since,
        leads.lead_id is null as is_deleted,
        leads.created_at as live_created_at,
        leads.identifiers_hash is distinct from staged.identifiers_hash as is_changed,
        -- no index on the claims' lead is promised: the planner hashes them or probes
        exists (
            select 1 from {claims} as claims
            where claims.lead_id = staged.lead_source_pk
        ) as is_claimed,
        linked.source_pk is not null as is_linked,
        -- a reviewer said "not this person" for the lead as it is (since the stream read it)
        staged.outcome = 'matched' and exists (
            select 1 from {reviews} as reviews
            where
                reviews.lead_source_pk = staged.lead_source_pk
                and reviews.person_key = staged.person_key
                and reviews.decision = 'reject'
                and reviews.identifiers_hash = staged.identifiers_hash
        ) as is_rejected,
        persons.person_key is null
        or persons.identifiers_hash is distinct from staged.person_identifiers_hash
            as is_person_changed
        -- noqa: enable=all
    from pg_temp.{stage} as staged
    left join lateral (
        select
            lead_rows.lead_id,
            lead_rows.created_at,
            {lead_hash} as identifiers_hash
        from {leads} as lead_rows
        where lead_rows.lead_id = staged.lead_source_pk
        limit 1  -- the primary key: keeps it a probe (a subquery PostgreSQL cannot flatten)
    ) as leads on true
    left join lateral (
        select
            person_rows.person_key,
            {person_hash} as identifiers_hash
        from {registry} as person_rows
        where
            staged.outcome = 'matched'
            and person_rows.person_key = staged.person_key
        limit 1
    ) as persons on true
    left join lateral (
        select attempts.lead_source_pk
        from {attempts} as attempts
        where
            attempts.lead_source_pk = staged.lead_source_pk
            and attempts.attempt_id > staged.last_attempt_id
        limit 1
    ) as attempted on true
    -- a match whose person is unchanged needs no link probe: its insert finds a link
    left join lateral (
        select links.source_pk
        from {links} as links
        where
            (
                staged.outcome = 'failed'
                or persons.person_key is null
                or persons.identifiers_hash is distinct from staged.person_identifiers_hash
            )
            and links.source_table = %(source_table)s
            and links.source_pk = staged.lead_source_pk
        limit 1
    ) as linked on true
),

-- what becomes of each lead: left out (a reason), its link found (`linked`: the caller
-- records it), its person changed (recorded as failed), or written as decided
verdicts as (
    select
        checked.*,
        case
            when checked.is_attempted_since then 'attempted_meanwhile'
            when checked.is_deleted then 'lead_deleted'
            when checked.is_claimed then 'claimed_meanwhile'
            when checked.is_linked and checked.outcome = 'failed' then 'linked_meanwhile'
            when checked.is_linked then 'linked'
            when checked.is_changed then 'changed_since_read'
            when checked.is_rejected then 'rejected_meanwhile'
            when checked.outcome = 'matched' and checked.is_person_changed
                then 'person_changed'
            else 'write'
        end as disposition
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
        verdicts.match_rule,
        verdicts.match_score,
        clock.written_at,
        %(linked_by)s,
        %(run_id)s
    from verdicts
    cross join clock
    where verdicts.disposition = 'write' and verdicts.outcome = 'matched'
    -- a link committed since this statement began (never overwritten)
    on conflict (source_table, source_pk) do nothing
    returning source_pk
),

-- one attempts-log row per lead settled: failed decisions, matches whose link was written,
-- and matches whose person changed (recorded as failed, with the decision as evidence)
settled as (
    select
        verdicts.lead_source_pk,
        verdicts.live_created_at,
        case
            when verdicts.disposition = 'person_changed' then 'failed'
            else verdicts.outcome
        end as outcome,
        case
            when verdicts.disposition = 'person_changed' then 'person_changed'
            else verdicts.fail_reason
        end as fail_reason,
        case when verdicts.disposition = 'write' then verdicts.match_rule end as match_rule,
        case when verdicts.disposition = 'write' then verdicts.match_score end as match_score,
        verdicts.person_key,
        case
            when verdicts.disposition = 'person_changed'
                then verdicts.evidence::jsonb || jsonb_build_object(
                    'person_changed', jsonb_build_object(
                        'person_key', verdicts.person_key,
                        'decided_rule', verdicts.match_rule,
                        'decided_score', verdicts.match_score,
                        'decided_identifiers_hash', verdicts.person_identifiers_hash
                    )
                )
            else verdicts.evidence::jsonb
        end as evidence,
        verdicts.identifiers_hash
    from verdicts
    where
        verdicts.disposition = 'person_changed'
        or (verdicts.disposition = 'write' and verdicts.outcome = 'failed')
        or verdicts.lead_source_pk in (select new_links.source_pk from new_links)
),

new_attempts as (
    insert into {attempts} (
        run_id, lead_source_pk, outcome, fail_reason, match_rule, match_score, person_key,
        evidence, identifiers_hash, started_at, attempted_at
    )
    select
        %(run_id)s,
        settled.lead_source_pk,
        settled.outcome,
        settled.fail_reason,
        settled.match_rule,
        settled.match_score,
        settled.person_key,
        settled.evidence,
        settled.identifiers_hash,
        %(started_at)s,
        clock.written_at
    from settled
    cross join clock
    returning 1
)

select
    (select count(*) from new_links) as links_written,
    (select count(*) from new_attempts) as attempts_written,
    array(
        select verdicts.lead_source_pk || ' ' || verdicts.disposition
        from verdicts
        where verdicts.disposition not in ('write', 'linked', 'person_changed')
    ) as skipped,
    array(
        select verdicts.lead_source_pk
        from verdicts
        where verdicts.disposition = 'person_changed'
    ) as person_changed,
    array(
        select verdicts.lead_source_pk
        from verdicts
        where
            verdicts.disposition = 'linked'
            or (
                verdicts.disposition = 'write'
                and verdicts.outcome = 'matched'
                and verdicts.lead_source_pk not in (select new_links.source_pk from new_links)
            )
    ) as linked_meanwhile,
    (select clock.written_at from clock) as written_at,
    -- the leads linked now, for their persons' origin rows (origin.sql)
    array(
        select settled.lead_source_pk
        from settled
        where settled.outcome = 'matched'
        order by settled.lead_source_pk
    ) as linked_leads,
    array(
        select settled.person_key
        from settled
        where settled.outcome = 'matched'
        order by settled.lead_source_pk
    ) as linked_persons,
    array(
        select settled.live_created_at
        from settled
        where settled.outcome = 'matched'
        order by settled.lead_source_pk
    ) as linked_created_at

-- name: record_attempts
-- the attempts-log rows of decided leads written without staging, by copy
-- noqa: disable=all
copy {attempts} (
    run_id,
    lead_source_pk,
    outcome,
    fail_reason,
    match_rule,
    match_score,
    person_key,
    evidence,
    identifiers_hash,
    started_at,
    attempted_at
) from stdin

-- name: existing_links
-- the links of the leads among %(lead_pks)s (the leads linked by someone else meanwhile)
select
    source_pk,
    person_key
from {links}
where source_table = %(source_table)s and source_pk = any(%(lead_pks)s::text[])
