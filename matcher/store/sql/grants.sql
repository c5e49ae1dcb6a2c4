-- `kpi-red grants --for <part>`: least privilege for the three roles, one part per owner,
-- so each runs as the role that owns its objects and no statement is left with a
-- "no privileges were granted" warning. Every name is quoted by psycopg.sql. Re-running a
-- part changes nothing.

-- name: database
-- Run as a superuser or the database's owner (the DBA who created the three roles).
-- The dbt role creates the project's schemas (`kpi-red init`, `dbt build`); the matcher
-- stages each batch in a temporary table.
do $$
begin
    execute format('grant connect, create on database %I to %I', current_database(), {dbt_role_name});
    execute format('grant connect, temporary on database %I to %I', current_database(), {matcher_role_name});
    execute format('grant connect on database %I to %I', current_database(), {reader_role_name});
end
$$;
-- The reviewer role (`kpi-red review`, `kpi-red unlink`), when the DBA created it.
do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = {reviewer_role_name}) then
        execute format('grant connect on database %I to %I', current_database(), {reviewer_role_name});
    end if;
end
$$;
-- `kpi-red cycle` runs as the dbt role and matches too: it acts with the matcher's rights.
do $$
begin
    if not exists (
        select 1
        from pg_catalog.pg_auth_members as members
        inner join pg_catalog.pg_roles as granted on granted.oid = members.roleid
        inner join pg_catalog.pg_roles as member on member.oid = members.member
        where granted.rolname = {matcher_role_name} and member.rolname = {dbt_role_name}
    ) then
        grant {matcher_role} to {dbt_role};
    end if;
end
$$;

-- name: upstream
-- Run as the owner of the upstream tables (each owner its own lines, if there are several).
-- dbt's role reads every source: its views read them with its rights.
grant usage on schema {upstream_schemas} to {dbt_role};
grant select on {leads}, {registry}, {links}, {origin}, {claims} to {dbt_role};
-- The matcher reads the leads, the registry and the claims (each batch re-checks its
-- leads and chosen persons against them before it writes), and reads and inserts links
-- and origin rows (it never updates or deletes them; `kpi-red repair-origin` inserts
-- origin rows too).
grant usage on schema {matcher_upstream_schemas} to {matcher_role};
grant select on {leads}, {registry}, {claims} to {matcher_role};
grant select, insert on {links}, {origin} to {matcher_role};
-- The reviewer, when the role exists: reads the leads, the registry and the claims (each
-- decision re-checks its lead), inserts a review's link and origin row, and deletes links
-- (`kpi-red unlink`). PostgreSQL grants DELETE on a whole table: the tool itself removes
-- only links whose linked_by is the matcher's or a review's, others only with --force.
do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = {reviewer_role_name}) then
        grant usage on schema {reviewer_upstream_schemas} to {reviewer_role};
        grant select on {leads}, {registry}, {claims} to {reviewer_role};
        grant select, insert, delete on {links} to {reviewer_role};
        grant select, insert on {origin} to {reviewer_role};
    end if;
end
$$;

-- name: project
-- Run as the dbt role (it owns all of these: `kpi-red init` and `dbt build` made them).
-- The matcher appends to its attempts log, and reads the relations dbt builds.
grant usage on schema {attempts_schema} to {matcher_role};
grant select, insert on {attempts} to {matcher_role};
-- It reads the reviewers' decisions: a pair a reviewer rejected is never linked.
grant usage on schema {reviews_schema} to {matcher_role};
grant select on {reviews} to {matcher_role};
-- The reviewer, when the role exists: appends to the two review logs, reads the attempts
-- log and what dbt builds (the backlog, the queue, the person keys).
do $$
begin
    if exists (select 1 from pg_catalog.pg_roles where rolname = {reviewer_role_name}) then
        grant usage on schema {review_schemas} to {reviewer_role};
        grant select, insert on {reviews}, {removals} to {reviewer_role};
        grant select on {attempts} to {reviewer_role};
        grant usage on schema {matcher_dbt_schemas} to {reviewer_role};
        grant select on all tables in schema {matcher_dbt_schemas} to {reviewer_role};
        alter default privileges for role {dbt_role} in schema {matcher_dbt_schemas}
        grant select on tables to {reviewer_role};
    end if;
end
$$;
grant usage on schema {matcher_dbt_schemas} to {matcher_role};
grant select on all tables in schema {matcher_dbt_schemas} to {matcher_role};
-- The reader (`kpi-red metrics`, `kpi-red serve`, BI tools): the marts, read-only.
grant usage on schema {reader_schema} to {reader_role};
grant select on all tables in schema {reader_schema} to {reader_role};
-- What dbt builds later, as the dbt role, carries the same grants.
alter default privileges for role {dbt_role} in schema {matcher_dbt_schemas}
grant select on tables to {matcher_role};
alter default privileges for role {dbt_role} in schema {reader_schema}
grant select on tables to {reader_role};
