{#- At most one row per `key` has `column` null (e.g. one open backlog interval per lead). -#}
{% test at_most_one_open(model, key, column) %}

select
    {{ key }},
    count(*) as open_rows
from {{ model }}
where {{ column }} is null
group by {{ key }}
having count(*) > 1

{% endtest %}
