{#- A one-row query: `is_enforced` is true when `relation` (a SQL string literal of its
    name) has a valid unique index on exactly `columns` (any order, no expression),
    with no predicate, or with `predicate` as PostgreSQL deparses it (e.g.
    `(left_at IS NULL)`). The catalog half of `unique_combination` and
    `at_most_one_open`. -#}
{%- macro unique_index_enforces(relation, columns, predicate=none) -%}
select count(*) > 0 as is_enforced
from pg_catalog.pg_index as indexes
where
    indexes.indrelid = to_regclass({{ relation }})
    and indexes.indisunique
    and indexes.indisvalid
    {%- if predicate is none %}
    and indexes.indpred is null
    {%- else %}
    and pg_catalog.pg_get_expr(indexes.indpred, indexes.indrelid) = {{ sql_literal(predicate) }}
    {%- endif %}
    and indexes.indexprs is null
    and indexes.indnkeyatts = {{ columns | length }}
    and (
        select array_agg(attributes.attname::text order by attributes.attname::text)
        from pg_catalog.pg_attribute as attributes
        where
            attributes.attrelid = indexes.indrelid
            and attributes.attnum = any(indexes.indkey::smallint [])
    ) = array[
        {%- for column in columns | sort %}{{ sql_literal(column) }}{{ ', ' if not loop.last }}{% endfor -%}
    ]::text []
{%- endmacro %}
