{#-
    A name as a quoted SQL identifier: `"Odd ""name"""`. For names from vars that are not
    dbt relations (a role); dbt quotes relations itself, and the sources' YAML doubles any
    `"` in a configured schema or table name (see `_cabinet__sources.yml`).
-#}
{%- macro sql_identifier(name) -%}
    {%- if name is none or (name | string) == '' -%}
        {{ exceptions.raise_compiler_error("sql_identifier: an empty name") }}
    {%- endif -%}
    "{{ name | string | replace('"', '""') }}"
{%- endmacro %}
