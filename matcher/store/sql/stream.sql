-- What `kpi-red match` reads. The eligible leads are copied from dbt's live view
-- `backlog_due` (the backlog view's eligible leads, found without evaluating every lead)
-- into the session's worklist in one short statement, committed at once, so a dbt build
-- that replaces a view waits for that statement only, never for a whole run. The run then
-- reads the worklist a page at a time, each page its own short statement, with each
-- lead's candidates: the registry persons holding its document, phone or email in dbt's
-- person_keys (an index probe per key). No transaction stays open between pages.
-- Identifiers are composed by psycopg.sql.

-- name: create
create temp table if not exists kpi_red_worklist (
    ordinal bigint generated always as identity primary key,
    lead_source_pk text not null,
    lead_created_at timestamptz not null,
    identifiers_hash text not null,
    full_name text,
    phone_key text,
    document_key text,
    email_key text,
    max_attempt_id bigint not null
) on commit preserve rows

-- name: clear
-- the ordinals start at 1 again and run without a gap: the pages below are ranges of them
truncate pg_temp.kpi_red_worklist restart identity

-- name: all
-- the whole eligible backlog, in lead order: a drain's candidates come hash-joined, in
-- no order, and a `medium` drain then peaked at 133 MB instead of 101 MB (measured; the
-- sort costs a few hundred ms of a drain)
insert into pg_temp.kpi_red_worklist (
    lead_source_pk, lead_created_at, identifiers_hash, full_name, phone_key, document_key,
    email_key, max_attempt_id
)
select
    backlog.lead_source_pk,
    backlog.lead_created_at,
    backlog.identifiers_hash,
    backlog.full_name,
    backlog.phone_key,
    backlog.document_key,
    backlog.email_key,
    backlog.max_attempt_id
from {due} as backlog
order by backlog.lead_source_pk

-- name: oldest
-- the next `limit` eligible leads, oldest first, after the last one a run has read
insert into pg_temp.kpi_red_worklist (
    lead_source_pk, lead_created_at, identifiers_hash, full_name, phone_key, document_key,
    email_key, max_attempt_id
)
select
    backlog.lead_source_pk,
    backlog.lead_created_at,
    backlog.identifiers_hash,
    backlog.full_name,
    backlog.phone_key,
    backlog.document_key,
    backlog.email_key,
    backlog.max_attempt_id
from {due} as backlog
where
    (backlog.lead_created_at, backlog.lead_source_pk)
    > (%(after_created_at)s::timestamptz, %(after_lead)s::text)
order by backlog.lead_created_at, backlog.lead_source_pk
limit %(limit)s::bigint

-- name: page
-- one page of the worklist, in its order, with the candidates of each key (a lead's key is
-- never junk, so no holder of its value is: the probes need no junk filter)
select
    worklist.lead_source_pk,
    worklist.lead_created_at,
    worklist.identifiers_hash,
    worklist.full_name,
    worklist.phone_key,
    worklist.document_key,
    worklist.email_key,
    worklist.max_attempt_id,
    candidates.key_types,
    candidates.person_keys,
    candidates.full_names,
    candidates.identifiers_hashes,
    rejected.person_keys as rejected_person_keys
from pg_temp.kpi_red_worklist as worklist
left join lateral (
    select
        array_agg(persons.key_type) as key_types,
        array_agg(persons.person_key) as person_keys,
        array_agg(persons.full_name) as full_names,
        array_agg(persons.identifiers_hash) as identifiers_hashes
    from (
        select
            person_keys.key_type,
            person_keys.person_key,
            person_keys.full_name,
            person_keys.identifiers_hash
        from {person_keys} as person_keys
        where
            person_keys.key_type = 'document'
            and person_keys.key_value = worklist.document_key
        union all
        select
            person_keys.key_type,
            person_keys.person_key,
            person_keys.full_name,
            person_keys.identifiers_hash
        from {person_keys} as person_keys
        where
            person_keys.key_type = 'phone'
            and person_keys.key_value = worklist.phone_key
        union all
        select
            person_keys.key_type,
            person_keys.person_key,
            person_keys.full_name,
            person_keys.identifiers_hash
        from {person_keys} as person_keys
        where
            person_keys.key_type = 'email'
            and person_keys.key_value = worklist.email_key
    ) as persons
) as candidates on true
-- the persons a reviewer said the lead is not, while its identifiers are as they were then
left join lateral (
    select array_agg(distinct reviews.person_key) as person_keys
    from {reviews} as reviews
    where
        reviews.lead_source_pk = worklist.lead_source_pk
        and reviews.decision = 'reject'
        and reviews.identifiers_hash = worklist.identifiers_hash
) as rejected on true
where
    worklist.ordinal > %(after)s::bigint
    and worklist.ordinal <= %(after)s::bigint + %(size)s::bigint
order by worklist.ordinal

-- name: changed_persons
-- the keys of the registry persons changed since the build, at most %(rows)s rows
select
    person_key,
    key_type,
    key_value,
    full_name,
    identifiers_hash
from {changed}
order by person_key, key_type
limit %(rows)s
