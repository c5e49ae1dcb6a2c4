-- `kpi-red init`: the project's own log, created when missing (idempotent). The schema
-- is created beforehand by matcher.store.admin.init_schema when missing. Run as the dbt role (or
-- with var dbt_role set, as any role that may act as it): what it creates belongs to that
-- role. Upstream tables (leads, registry, links, origin, claims) are never touched here:
-- they are their owners'. Identifiers are passed in by psycopg.sql.

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
