{#- True for an attempt made since the last build that folded the attempts log: its
    `attempt_id` above the highest `max_attempt_id` of `stored` (a relation or CTE of
    `int_lead_attempts__stored`). The one definition of "since the build" for
    `int_lead_attempts__recent` and `backlog_due`. -#}
{%- macro attempted_since_build(attempt_id, stored) -%}
{{ attempt_id }} > (
    select coalesce(max({{ stored }}.max_attempt_id), 0) from {{ stored }}
)
{%- endmacro %}
