-- `kpi-red unlink`: under the lead's advisory lock, its link is removed (only one the
-- matcher or a review made, unless forced), logged with its columns, and its person
-- rejected for the lead as it is now, all at one `statement_timestamp()`. Identifiers are
-- composed by psycopg.sql.

-- name: lock
select pg_advisory_xact_lock({lock_key})

-- name: unlink
with

clock as (
    select statement_timestamp() as removed_at
),

current_link as (
    select link_rows.*
    from {links} as link_rows
    where
        link_rows.source_table = %(source_table)s
        and link_rows.source_pk = %(lead)s
),

lead_now as (
    select {lead_hash} as identifiers_hash
    from {leads} as lead_rows
    where lead_rows.lead_id = %(lead)s
    limit 1
),

removed as (
    delete from {links} as link_rows
    where
        link_rows.source_table = %(source_table)s
        and link_rows.source_pk = %(lead)s
        and (%(force)s or link_rows.linked_by = any(%(ours)s::text[]))
    returning link_rows.*
),

logged as (
    insert into {removals} (
        lead_source_pk, person_key, removed_by, db_user, reason, is_forced, removed_at,
        source_table, match_rule, match_score, linked_at, linked_by, link_run_id
    )
    select
        removed.source_pk,
        removed.person_key,
        %(reviewer)s,
        current_user,
        %(reason)s,
        %(force)s,
        clock.removed_at,
        removed.source_table,
        removed.match_rule,
        removed.match_score,
        removed.linked_at,
        removed.linked_by,
        removed.run_id
    from removed
    cross join clock
    returning 1
),

rejected as (
    insert into {reviews} (
        lead_source_pk, person_key, decision, reviewer, db_user, note, identifiers_hash,
        decided_via, run_id, decided_at
    )
    select
        removed.source_pk,
        removed.person_key,
        'reject',
        %(reviewer)s,
        current_user,
        %(reason)s,
        lead_now.identifiers_hash,
        'unlink',
        %(run_id)s,
        clock.removed_at
    from removed
    cross join lead_now
    cross join clock
    returning 1
)

select
    (select current_link.person_key from current_link) as person_key,
    (select current_link.linked_by from current_link) as linked_by,
    (select current_link.linked_at from current_link) as linked_at,
    (select count(*) from logged) as removed,
    (select count(*) from rejected) as rejected,
    (select clock.removed_at from clock) as removed_at
