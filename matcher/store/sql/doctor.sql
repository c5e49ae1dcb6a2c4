-- `kpi-red doctor`: what the catalog says, read-only. Each section is one query over
-- arrays of names (never a query per object); matcher/doctor.py judges the rows.

-- name: server
select
    current_setting('server_version_num')::integer as version_num,
    current_setting('server_version') as version,
    current_database() as database_name,
    pg_catalog.pg_get_userbyid(pg_database.datdba) as database_owner,
    current_user as current_role_name
from pg_catalog.pg_database
where pg_database.datname = current_database();

-- name: roles
select
    wanted.role_name,
    roles.oid is not null as is_present,
    coalesce(roles.rolsuper, false) as is_superuser
from unnest(%(roles)s::text[]) as wanted (role_name)
left join pg_catalog.pg_roles as roles
    on roles.rolname = wanted.role_name;

-- name: schemas
select
    wanted.schema_name,
    namespaces.oid is not null as is_present,
    pg_catalog.pg_get_userbyid(namespaces.nspowner) as owner
from unnest(%(schemas)s::text[]) as wanted (schema_name)
left join pg_catalog.pg_namespace as namespaces
    on namespaces.nspname = wanted.schema_name;

-- name: relations
-- the named relations, and every relation in the schemas given as `owned_schemas`
select
    namespaces.nspname as schema_name,
    classes.relname as relation_name,
    classes.relkind::text as kind,
    pg_catalog.pg_get_userbyid(classes.relowner) as owner
from pg_catalog.pg_class as classes
inner join pg_catalog.pg_namespace as namespaces
    on namespaces.oid = classes.relnamespace
where
    classes.relkind in ('r', 'p', 'v', 'm', 'f')
    and (
        namespaces.nspname = any(%(owned_schemas)s::text[])
        or (namespaces.nspname::text, classes.relname::text) in (
            select *
            from unnest(%(schemas)s::text[], %(names)s::text[])
        )
    );

-- name: columns
select
    namespaces.nspname as schema_name,
    classes.relname as relation_name,
    attributes.attname as column_name,
    pg_catalog.format_type(attributes.atttypid, null) as data_type,
    attributes.attnotnull as is_not_null,
    attributes.atthasdef or attributes.attidentity <> '' or attributes.attgenerated <> ''
        as has_default
from unnest(%(schemas)s::text[], %(names)s::text[]) as wanted (schema_name, relation_name)
inner join pg_catalog.pg_namespace as namespaces
    on namespaces.nspname = wanted.schema_name
inner join pg_catalog.pg_class as classes
    on classes.relnamespace = namespaces.oid and classes.relname = wanted.relation_name
inner join pg_catalog.pg_attribute as attributes
    on attributes.attrelid = classes.oid
where attributes.attnum > 0 and not attributes.attisdropped;

-- name: indexes
-- every valid, non-partial index on plain columns, its columns in order
select
    namespaces.nspname as schema_name,
    classes.relname as relation_name,
    index_columns.column_names,
    indexes.indisunique as is_unique,
    coalesce(constraints.condeferrable, false) as is_deferrable
from unnest(%(schemas)s::text[], %(names)s::text[]) as wanted (schema_name, relation_name)
inner join pg_catalog.pg_namespace as namespaces
    on namespaces.nspname = wanted.schema_name
inner join pg_catalog.pg_class as classes
    on classes.relnamespace = namespaces.oid and classes.relname = wanted.relation_name
inner join pg_catalog.pg_index as indexes
    on indexes.indrelid = classes.oid
left join pg_catalog.pg_constraint as constraints
    on constraints.conindid = indexes.indexrelid and constraints.conrelid = classes.oid
cross join
    lateral (
        select array_agg(attributes.attname::text order by keys.position) as column_names
        from unnest(indexes.indkey::smallint[]) with ordinality as keys (attnum, position)
        inner join pg_catalog.pg_attribute as attributes
            on attributes.attrelid = classes.oid and attributes.attnum = keys.attnum
        where keys.position <= indexes.indnkeyatts
    ) as index_columns
where indexes.indisvalid and indexes.indpred is null and indexes.indexprs is null;

-- name: privileges
-- whether each role holds each privilege (directly, through a role it inherits, or as
-- PUBLIC); kinds: database, schema, table, role (membership: object_name is the role)
select
    wanted.role_name,
    wanted.object_kind,
    wanted.schema_name,
    wanted.object_name,
    wanted.privilege,
    case wanted.object_kind
        when 'database'
            then
                pg_catalog.has_database_privilege(wanted.role_name, current_database(), wanted.privilege)
        when 'schema'
            then
                pg_catalog.has_schema_privilege(
                    wanted.role_name,
                    (
                        select oid from pg_catalog.pg_namespace
                        where nspname = wanted.schema_name
                    ),
                    wanted.privilege
                )
        when 'table'
            then
                pg_catalog.has_table_privilege(
                    wanted.role_name,
                    (
                        select classes.oid
                        from pg_catalog.pg_class as classes
                        inner join pg_catalog.pg_namespace as namespaces
                            on namespaces.oid = classes.relnamespace
                        where
                            namespaces.nspname = wanted.schema_name
                            and classes.relname = wanted.object_name
                    ),
                    wanted.privilege
                )
        when 'role' then
            pg_catalog.pg_has_role(wanted.role_name, wanted.object_name, wanted.privilege)
    end as is_granted
from unnest(
    %(roles)s::text[], %(kinds)s::text[], %(schemas)s::text[], %(names)s::text[],
    %(privileges)s::text[]
) as wanted (role_name, object_kind, schema_name, object_name, privilege);

-- name: default_privileges
-- what relations `owner` creates in each schema give to whom (ALTER DEFAULT PRIVILEGES)
select
    namespaces.nspname as schema_name,
    pg_catalog.pg_get_userbyid(grants.grantee) as grantee,
    grants.privilege_type as privilege
from pg_catalog.pg_default_acl as defaults
inner join pg_catalog.pg_namespace as namespaces
    on namespaces.oid = defaults.defaclnamespace
cross join lateral aclexplode(defaults.defaclacl) as grants
where
    defaults.defaclobjtype = 'r'
    and defaults.defaclrole = (
        select oid from pg_catalog.pg_roles
        where rolname = %(owner)s
    );
