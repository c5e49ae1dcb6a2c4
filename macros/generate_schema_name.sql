{#-
    Custom schemas are used exactly as written (`ops`, not `analytics_ops`): the matcher,
    the panel and BI tools read fixed names. Models without one land in the target schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
