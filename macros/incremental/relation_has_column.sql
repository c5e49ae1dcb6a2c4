{#-
    True when `relation` exists and has `column` (at run time; false while parsing). Lets
    an incremental model stored by an older version, before a column was added, run its
    first incremental build as a full recomputation instead of failing.
-#}
{%- macro relation_has_column(relation, column) -%}
    {%- if not execute -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {{ return(column in names) }}
{%- endmacro %}
