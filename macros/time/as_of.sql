{#-
    "Now" for every model, as SQL: `now()` when the var `as_of` is null (production), else
    the var. A bare date (`2024-05-10`) means the last instant of that day in
    `metrics_time_zone` (the whole day is in the past, and it is still that day); anything
    else is cast to timestamptz.
-#}
{% macro as_of_ts() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is none or as_of | string | trim in ('', 'None', 'null') -%}
        now()
    {%- elif modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', as_of | string | trim) -%}
        (({{ sql_literal(as_of | string | trim) }}::date + 1)::timestamp at time zone {{ sql_literal(var("metrics_time_zone")) }} - interval '1 microsecond')
    {%- else -%}
        ({{ sql_literal(as_of | string | trim) }}::timestamptz)
    {%- endif -%}
{%- endmacro %}

{#- The calendar date (in `metrics_time_zone`) of a timestamptz expression. -#}
{% macro local_date(expr) -%}
    (({{ expr }}) at time zone {{ sql_literal(var("metrics_time_zone")) }})::date
{%- endmacro %}

{#- The instant a local calendar date starts (midnight in `metrics_time_zone`). -#}
{% macro local_day_start(date_expr) -%}
    (({{ date_expr }})::timestamp at time zone {{ sql_literal(var("metrics_time_zone")) }})
{%- endmacro %}
