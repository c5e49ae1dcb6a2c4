-- Least privilege for kpi-red (`kpi-red grants` prints this with the names filled in).
-- Run as the owner of the tables (the role dbt builds with). Identifiers are quoted by
-- psycopg.sql, never spliced in as text.

-- The matcher role: reads the dbt relations it claims from (the backlog view, the
-- registry keys stored and changed since the build, the one-edit and junk tables), reads
-- the leads, the registry and the claims (each batch re-checks its leads and chosen
-- persons against them before it writes; repair-origin reads the leads), writes its three
-- tables (links, origin, attempts log) and nothing else.
grant usage on schema {matcher_schemas} to {matcher_role};
grant select on {leads}, {registry}, {claims} to {matcher_role};
grant select, insert, update on {links}, {origin}, {attempts} to {matcher_role};
grant select on {backlog}, {person_keys}, {person_keys_changed}, {person_identifiers}, {person_deletions}, {junk} to {matcher_role};
-- dbt re-creates its tables on every build: let the new ones carry the grant.
alter default privileges in schema {dbt_schemas} grant select on tables to {matcher_role};
-- Each batch is staged in a temporary table: TEMPORARY on this database (PostgreSQL
-- grants it to PUBLIC unless that was revoked).
do $$ begin
    execute format('grant temporary on database %I to %I', current_database(), {matcher_role_name});
end $$;

-- The panel role (`kpi-red metrics`, `kpi-red serve`, BI tools): read-only on the marts.
grant usage on schema {ops_schema} to {reader_role};
grant select on all tables in schema {ops_schema} to {reader_role};
alter default privileges in schema {ops_schema} grant select on tables to {reader_role};
