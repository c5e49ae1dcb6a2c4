{#- Primary-key test for a composite key: no two rows share the values of `columns`,
    and none of them is null. -#}
{% test unique_combination(model, columns) %}

with

keyed as (
    select {{ columns | join(', ') }}
    from {{ model }}
),

duplicated as (
    select
        {{ columns | join(', ') }},
        count(*) as row_count
    from keyed
    group by {{ columns | join(', ') }}
    having count(*) > 1
),

with_nulls as (
    select
        {{ columns | join(', ') }},
        1 as row_count
    from keyed
    where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
),

final as (
    select * from duplicated
    union all
    select * from with_nulls
)

select * from final

{% endtest %}
