{#-
    Post-hook: PostgreSQL enforces at most one row per `key` with `column` null (one open
    interval per lead) as rows are written, by a partial unique index created here when
    the table has none (dbt's index config cannot say `where`). PostgreSQL names it: in a
    `--full-refresh` the table being replaced still holds its index until dbt drops it
    after the commit. The `at_most_one_open` test then reads the catalog, not the rows.
-#}
{%- macro unique_open_index(relation, key, column) -%}
{%- set regclass = sql_literal(relation.include(database=false).render()) %}
do $unique_open$
begin
    if not exists (
        select 1 from pg_catalog.pg_index
        where
            indrelid = to_regclass({{ regclass }})
            and indisunique
            and pg_catalog.pg_get_expr(indpred, indrelid) = {{ sql_literal('(' ~ column ~ ' IS NULL)') }}
    ) then
        create unique index on {{ relation }} ({{ key }}) where {{ column }} is null;
    end if;
end
$unique_open$
{%- endmacro %}
