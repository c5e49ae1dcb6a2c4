-- What `kpi-red explain` and `kpi-red review list` read: the live backlog view, dbt's
-- person keys and junk values, the upstream tables and the project's logs, each an index
-- probe per lead or person (never a scan). Identifiers are composed by psycopg.sql.

-- name: queue
-- the red leads whose last outcome needs a person, oldest first
select
    backlog.lead_source_pk,
    backlog.reason_bucket,
    backlog.lead_created_at,
    backlog.age_days,
    backlog.identifiers_hash,
    backlog.full_name,
    backlog.document_key,
    backlog.phone_key,
    backlog.email_key,
    backlog.attempt_count,
    backlog.last_attempt_at,
    last_attempt.evidence,
    last_attempt.person_key
from {backlog} as backlog
left join lateral (
    select
        attempts.evidence,
        attempts.person_key
    from {attempts} as attempts
    where attempts.lead_source_pk = backlog.lead_source_pk
    order by attempts.attempt_id desc
    limit 1
) as last_attempt on true
where backlog.reason_bucket = any(%(reasons)s::text[])
order by backlog.lead_created_at, backlog.lead_source_pk

-- name: rejections
-- the persons rejected for each lead, with the identifiers hash they were rejected at
select
    reviews.lead_source_pk,
    reviews.person_key,
    reviews.identifiers_hash
from {reviews} as reviews
where
    reviews.lead_source_pk = any(%(leads)s::text[])
    and reviews.decision = 'reject'

-- name: persons
-- registry persons as they are now, with their keys as dbt normalized them
select
    persons.person_key,
    persons.full_name,
    keys.document_key,
    keys.phone_key,
    keys.email_key
from {registry} as persons
left join lateral (
    select
        max(person_keys.key_value) filter (where person_keys.key_type = 'document')
            as document_key,
        max(person_keys.key_value) filter (where person_keys.key_type = 'phone') as phone_key,
        max(person_keys.key_value) filter (where person_keys.key_type = 'email') as email_key
    from {person_keys} as person_keys
    where person_keys.person_key = persons.person_key
) as keys on true
where persons.person_key = any(%(persons)s::text[])

-- name: lead
select
    leads.lead_id,
    leads.created_at,
    leads.full_name,
    leads.phone,
    leads.document_type,
    leads.document_number,
    leads.email,
    {lead_hash} as identifiers_hash
from {leads} as leads
where leads.lead_id = %(lead)s

-- name: backlog_row
-- `is_due`: whether a matcher run takes it now (`backlog_due`); an eligible lead that is
-- not due turned red without a trace the view can see before the next build
select
    backlog.reason_bucket,
    backlog.age_days,
    backlog.attempt_count,
    backlog.last_attempt_at,
    backlog.next_attempt_at,
    backlog.is_eligible,
    coalesce(due.is_due, false) as is_due
from {backlog} as backlog
left join lateral (
    select true as is_due
    from {due} as due
    where due.lead_source_pk = backlog.lead_source_pk
    limit 1
) as due on true
where backlog.lead_source_pk = %(lead)s

-- name: queue_row
select
    queue.status,
    queue.fail_reason,
    queue.entered_at,
    queue.left_at,
    queue.exit_kind,
    queue.interval_count,
    queue.next_attempt_at
from {queue} as queue
where queue.lead_source_pk = %(lead)s

-- name: key_holders
-- for each of the lead's normalized keys: junk (why), and how many registry persons hold it
select
    wanted.key_type,
    wanted.key_value,
    junk.junk_reason,
    (
        select count(*)
        from {person_keys} as person_keys
        where
            person_keys.key_type = wanted.key_type
            and person_keys.key_value = wanted.key_value
    ) as holders,
    array(
        select person_keys.person_key
        from {person_keys} as person_keys
        where
            person_keys.key_type = wanted.key_type
            and person_keys.key_value = wanted.key_value
        order by person_keys.person_key
        limit 10
    ) as person_keys
from unnest(%(key_types)s::text[], %(key_values)s::text[]) as wanted (key_type, key_value)
left join {junk} as junk
    on
        junk.key_type = wanted.key_type
        and junk.key_value = wanted.key_value

-- name: attempts
select
    attempts.attempt_id,
    attempts.run_id,
    attempts.attempted_at,
    attempts.outcome,
    attempts.fail_reason,
    attempts.match_rule,
    attempts.match_score,
    attempts.person_key,
    attempts.evidence,
    attempts.identifiers_hash
from {attempts} as attempts
where attempts.lead_source_pk = %(lead)s
order by attempts.attempt_id

-- name: link
select
    links.person_key,
    links.match_rule,
    links.match_score,
    links.linked_at,
    links.linked_by,
    links.run_id,
    origin.origin_tag,
    origin.origin_source_pk,
    origin.origin_created_at,
    origin.recorded_at
from {links} as links
left join {origin} as origin
    on origin.person_key = links.person_key
where
    links.source_table = %(source_table)s
    and links.source_pk = %(lead)s

-- name: claims
select count(*) as claims
from {claims} as claims
where claims.lead_id = %(lead)s

-- name: decisions
select
    reviews.decision_id,
    reviews.decided_at,
    reviews.reviewer,
    reviews.decision,
    reviews.person_key,
    reviews.note,
    reviews.decided_via,
    reviews.identifiers_hash
from {reviews} as reviews
where reviews.lead_source_pk = %(lead)s
order by reviews.decision_id

-- name: removals
select
    removals.removed_at,
    removals.removed_by,
    removals.reason,
    removals.person_key,
    removals.linked_by,
    removals.linked_at,
    removals.is_forced
from {removals} as removals
where removals.lead_source_pk = %(lead)s
order by removals.removal_id

-- name: causes
-- the panel's "what to do": the backlog by cause, and the linked persons with no origin
select
    causes.reason_bucket,
    causes.leads,
    causes.share_pct,
    causes.oldest_age_days,
    causes.fixed_by,
    causes.is_reviewable,
    (select count(*) from {origin_missing}) as origin_missing_persons
from {causes} as causes
order by causes.leads desc, causes.reason_bucket

-- name: bucket
-- one reviewable bucket's red leads, oldest first (what the panel's links open)
select
    backlog.lead_source_pk,
    backlog.reason_bucket,
    backlog.age_days,
    backlog.lead_created_at,
    backlog.attempt_count,
    backlog.last_attempt_at
from {backlog} as backlog
where backlog.reason_bucket = %(reason)s
order by backlog.lead_created_at, backlog.lead_source_pk
limit %(limit)s
