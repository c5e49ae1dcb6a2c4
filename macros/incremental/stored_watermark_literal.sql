{% macro query_literal(query, type) -%}
{#- The single value `query` returns, read as the model compiles and written into its SQL
    as a literal of `type` (`null::type` while parsing). PostgreSQL estimates a condition
    on a literal from the column's statistics and index; on a subquery's value, which it
    cannot see, it guesses a third of the table. Only for a value nothing can move
    between the node's compile and its run: what dbt alone writes, built before. -#}
{%- if not execute -%}
    {{ return("null::" ~ type) }}
{%- endif -%}
{#- as the role the build writes as (the model's pre-hook has not run yet on a fresh
    connection; a member that does not inherit its privileges could not read them) -#}
{%- set as_dbt_role = become_dbt_role() | trim -%}
{%- if as_dbt_role -%}
    {%- do run_query(as_dbt_role) -%}
{%- endif -%}
{%- set found = run_query(query).columns[0].values()[0] -%}
{{ return("null::" ~ type if found is none else "'" ~ found ~ "'::" ~ type) }}
{%- endmacro %}

{% macro stored_watermark_literal(relation, column) -%}
{#- `stored_watermark` as a literal (`query_literal`): the rows loaded since are then
    counted right, and their keys probed instead of whole tables hashed. -#}
{{ return(query_literal("select " ~ stored_watermark(relation, column) ~ "::text", 'timestamptz')) }}
{%- endmacro %}
