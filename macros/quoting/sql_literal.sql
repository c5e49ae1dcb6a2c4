{#-
    A value as a SQL string literal: `'it''s'`; null for none. A value with a backslash
    becomes an escape string (`E'a\\b'`), so it means the same whatever
    `standard_conforming_strings` is. Every var that reaches SQL as a value goes through
    here (or `sql_integer`), never spliced as text.
-#}
{%- macro sql_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        {%- set text = value | string -%}
        {%- if '\\' in text -%}
            E'{{ text | replace('\\', '\\\\') | replace("'", "''") }}'
        {%- else -%}
            '{{ text | replace("'", "''") }}'
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
