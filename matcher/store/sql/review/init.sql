-- `kpi-red init`: the reviewers' two append-only logs, created when missing (idempotent),
-- in the same transaction and as the same role as the attempts log. Identifiers are passed
-- in by psycopg.sql.

-- a person's decision on one (lead, person) pair: `link` (the link was written with it,
-- at `decided_at`) or `reject` (the matcher never links the pair while the lead's
-- identifiers hash is still `identifiers_hash`)
create table if not exists {reviews} (
    decision_id bigint generated always as identity primary key,
    lead_source_pk text not null,
    person_key text not null,
    decision text not null check (decision in ('link', 'reject')),
    reviewer text not null,
    db_user text not null,
    note text,
    identifiers_hash text not null,
    decided_via text not null,
    run_id text not null,
    decided_at timestamptz not null
);
create index if not exists review_decisions_lead_idx
on {reviews} (lead_source_pk, decision_id);
create index if not exists review_decisions_decided_at_idx
on {reviews} (decided_at);

-- a link `kpi-red unlink` removed: who, when, why, and the link as it was
create table if not exists {removals} (
    removal_id bigint generated always as identity primary key,
    lead_source_pk text not null,
    person_key text not null,
    removed_by text not null,
    db_user text not null,
    reason text not null,
    is_forced boolean not null,
    removed_at timestamptz not null,
    source_table text not null,
    match_rule text,
    match_score real,
    linked_at timestamptz,
    linked_by text,
    link_run_id text
);
create index if not exists link_removals_lead_idx
on {removals} (lead_source_pk, removal_id);
