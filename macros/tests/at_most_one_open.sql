{#- At most one row per `key` has `column` null (e.g. one open backlog interval per lead).

    When PostgreSQL enforces it as rows are written, the test reads only the catalog: the
    relation has a valid unique index on exactly `key` whose predicate is `column IS NULL`
    (`unique_open_index` creates one). Otherwise the rows are grouped (a view, or a table
    built before the index). -#}
{% test at_most_one_open(model, key, column) %}

{%- set relation = sql_literal(model.include(database=false).render()) %}

with

open_index as (
    {{ unique_index_enforces(relation, [key], '(' ~ column ~ ' IS NULL)') | indent(4) }}
),

final as (
    select
        {{ key }},
        count(*) as open_rows
    from {{ model }}
    where
        {{ column }} is null
        and not (select open_index.is_enforced from open_index)
    group by {{ key }}
    having count(*) > 1
)

select * from final

{% endtest %}
