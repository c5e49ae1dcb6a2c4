{#- Primary-key test for a key of one or more columns: no two rows share the values of
    `columns`, and none of them is null.

    When PostgreSQL itself enforces the key, as rows are written, the test reads only
    the catalog: uniqueness when the relation has a valid unique index on exactly these
    columns (no predicate, no expression), and absence of nulls for each column declared
    NOT NULL (a contract's `not_null` constraint). What is not enforced is checked on
    the rows. So a large stored table (tens of millions of one-edit variants) is tested
    on every build for nothing, a view is read in full, and removing the index or the
    constraint makes the test read the rows again. (Each check is a one-time filter: the
    plan skips the scan when the catalog answers.) -#}
{% test unique_combination(model, columns) %}

{%- set relation = sql_literal(model.include(database=false).render()) %}

with

key_index as (
    {{ unique_index_enforces(relation, columns) | indent(4) }}
),

not_null_columns as (
    select count(*) = {{ columns | length }} as is_enforced
    from pg_catalog.pg_attribute as attributes
    where
        attributes.attrelid = to_regclass({{ relation }})
        and attributes.attnum > 0
        and attributes.attnotnull
        and attributes.attname::text in (
            {%- for column in columns %}{{ sql_literal(column) }}{{ ', ' if not loop.last }}{% endfor -%}
        )
),

duplicated as (
    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from {{ model }}
    where not (select key_index.is_enforced from key_index)
    group by {{ columns | join(', ') }}
    having count(*) > 1
),

with_nulls as (
    select
        {{ columns | join(', ') }},
        1 as row_count
    from {{ model }}
    where
        not (select not_null_columns.is_enforced from not_null_columns)
        and ({% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %})
),

final as (
    select * from duplicated
    union all
    select * from with_nulls
)

select * from final

{% endtest %}
