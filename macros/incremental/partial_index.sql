{#-
    Post-hook statement: creates, when `relation` has none, an index on `columns` whose
    predicate is `where` (as PostgreSQL deparses it, e.g. `(left_at IS NULL)`), unique
    if asked (dbt's index config cannot say `where`). PostgreSQL names it: in a
    `--full-refresh` the table being replaced still holds its indexes until dbt drops it
    after the commit, so a fixed name was taken and `create index if not exists` skipped
    it.
-#}
{%- macro partial_index(relation, columns, where, unique=false) -%}
{%- set regclass = sql_literal(relation.include(database=false).render()) %}
do $partial_index$
begin
    if not exists (
        select 1 from pg_catalog.pg_index
        where
            indrelid = to_regclass({{ regclass }})
            and indisunique = {{ 'true' if unique else 'false' }}
            and pg_catalog.pg_get_expr(indpred, indrelid) = {{ sql_literal(where) }}
    ) then
        create {{ 'unique ' if unique }}index on {{ relation }} ({{ columns | join(', ') }})
        where {{ where }};
    end if;
end
$partial_index$
{%- endmacro %}

{#-
    Post-hook: PostgreSQL enforces at most one row per `key` with `column` null (one open
    interval per lead) as rows are written, by a partial unique index; the
    `at_most_one_open` test then reads the catalog, not the rows.
-#}
{%- macro unique_open_index(relation, key, column) -%}
{{ partial_index(relation, [key], '(' ~ column ~ ' IS NULL)', unique=true) }}
{%- endmacro %}
