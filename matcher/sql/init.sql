-- Tables the matcher writes: created by `kpi-red init` when missing (idempotent).
-- In production identity_links and identity_origin already exist; only the
-- attempts log is the matcher's own. Identifiers are passed in by psycopg.sql.

create schema if not exists {links_schema};
create schema if not exists {origin_schema};
create schema if not exists {attempts_schema};

create table if not exists {links} (
    source_table text not null,
    source_pk text not null,
    person_key text not null,
    match_rule text,
    match_score real,
    linked_at timestamptz not null default now(),
    linked_by text,
    run_id text,
    unique (source_table, source_pk)
);
create index if not exists identity_links_person_key_idx on {links} (person_key);

create table if not exists {origin} (
    person_key text primary key,
    origin_tag text,
    origin_source_pk text,
    origin_created_at timestamptz,
    recorded_at timestamptz not null default now()
);

create table if not exists {attempts} (
    attempt_id bigint generated always as identity primary key,
    run_id text not null,
    lead_source_pk text not null,
    outcome text not null check (outcome in ('matched', 'failed')),
    fail_reason text,
    match_rule text,
    match_score real,
    person_key text,
    evidence jsonb not null default '{{}}'::jsonb,
    identifiers_hash text not null,
    started_at timestamptz not null,
    attempted_at timestamptz not null default now(),
    check ((outcome = 'matched') = (fail_reason is null))
);
create index if not exists match_attempts_attempted_at_idx
    on {attempts} (attempted_at);
-- a lead's attempts: the matcher's "attempted since" re-check, dbt's folds per lead
create index if not exists match_attempts_lead_attempt_idx
    on {attempts} (lead_source_pk, attempt_id);
-- (lead_source_pk, attempted_at desc) served the same reads: one index less per insert
drop index if exists {attempts_schema}.match_attempts_lead_idx;
