{#-
    A var that must be a whole number, as SQL; a compile error naming the var otherwise
    (`retry_base_minutes must be a whole number, got '60; drop table x'`). `minimum`
    (default 0) is the least value accepted.
-#}
{%- macro sql_integer(name, value, minimum=0) -%}
    {%- set text = value | string | trim -%}
    {%- if value is none or value is boolean or not text
        or text.lstrip('-') | reject('in', '0123456789') | list
        or not text.lstrip('-')
        or (text | int) < minimum -%}
        {{ exceptions.raise_compiler_error(
            name ~ " must be a whole number of at least " ~ minimum ~ ", got " ~ (value | tojson)
        ) }}
    {%- endif -%}
    {{ text | int }}
{%- endmacro %}
