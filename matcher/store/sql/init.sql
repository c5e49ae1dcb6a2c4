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
    -- the transaction that wrote the attempt: dbt's stored fold re-reads exactly the
    -- attempts of transactions still running at its last build (int_lead_attempts__stored)
    written_xact_id xid8 default pg_current_xact_id(),
    check ((outcome = 'matched') = (fail_reason is null))
);
-- a log created before that column gets it once (catalog only; existing rows stay null:
-- the alter waits for every transaction writing the log, so all of them are committed)
do $written_xact$
begin
    if not exists (
        select 1 from pg_catalog.pg_attribute
        where
            attrelid = {attempts_name}::regclass
            and attname = 'written_xact_id'
            and not attisdropped
    ) then
        alter table {attempts} add column written_xact_id xid8;
        alter table {attempts} alter column written_xact_id set default pg_current_xact_id();
    end if;
end
$written_xact$;
create index if not exists match_attempts_written_xact_idx
on {attempts} (written_xact_id);
create index if not exists match_attempts_attempted_at_idx
on {attempts} (attempted_at);
-- a lead's attempts: the matcher's "attempted since" re-check, dbt's folds per lead
create index if not exists match_attempts_lead_attempt_idx
on {attempts} (lead_source_pk, attempt_id);
-- (lead_source_pk, attempted_at desc) served the same reads: one index less per insert
drop index if exists {attempts_schema}.match_attempts_lead_idx;
