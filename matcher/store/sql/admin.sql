-- Catalog reads of `kpi-red init` and `kpi-red cycle`.

-- name: attempts_owner
-- the attempts log's owner oid, when it exists (init checks it may act as that role)
select relowner from pg_class
where oid = to_regclass(format('%%I.%%I', %s::text, %s::text))  -- noqa: LT01

-- name: missing_relations
-- the relations among (schemas, names) that do not exist
select relation.name
from unnest(%s::text[], %s::text[]) as relation (schema, name)
where to_regclass(format('%%I.%%I', relation.schema, relation.name)) is null

-- name: missing_sources
-- one row per (schema, name), in their order: whether it is missing
select to_regclass(format('%%I.%%I', relation.schema, relation.name)) is null as is_missing
from unnest(%s::text[], %s::text[]) with ordinality as relation (schema, name, n)
order by relation.n
